"""Read a dataset file into training examples: the contract the training recipe relies on.

    loaded = load_examples(path, fmt="auto", column_map=None)   # LoadedData(format, examples, rows)

It is the checker (core.data.check) with the examples kept: "valid" in the Dataset tab and in
`check-data` means exactly "will train". Any problem raises InputError listing them (line,
field, message, fix), with counts per type.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.data.check import check_file
from core.data.issues import title
from core.errors import InputError, Problem
from core.messages import Msg


@dataclass
class LoadedData:
    format: str
    examples: list[dict]
    rows: int


def load_examples(path: str | Path, fmt: str = "auto", column_map: dict | None = None, *,
                  display_name: str | None = None) -> LoadedData:
    """Every record as an example; raise InputError when any record is unusable. display_name: the name
    people know the file by (training reads a pinned copy named by its hash)."""
    path = Path(path)
    name = display_name or path.name
    rep = check_file(path, fmt or "auto", column_map, collect=True, display_name=name)
    if not rep.ok:
        problems = rep.error_problems()
        for code, c in rep.counts().items():
            kept = len(rep.collector.kept.get(code, []))
            if not c["warning"] and c["count"] > kept:
                problems.append(Problem(name, Msg("load.more", n=c["count"] - kept, kind=title(code))))
        if not problems:
            problems.append(Problem(name, Msg("load.no_usable"), Msg("check.add_examples.hint")))
        raise InputError(problems=problems, title=Msg("load.title", file=name, summary=rep.summary()))
    return LoadedData(format=rep.format, examples=rep.examples or [], rows=rep.rows)
