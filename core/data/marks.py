"""Review marks (Keep / Drop / Needs fix, with a note) of one dataset version, and the file training reads.

A version in the store (core/data/store.py) is its data file plus, once someone reviewed it, a
marks file: `marks/<sha256[:16]>.json`, {"marks": {"17": {"mark": "drop", "note": "wrong dose"}}},
keyed by record number. Marking makes a new version with the same data and new marks, so Undo takes
a mark back like any cleaning step. When rows are marked Drop, the version also has a training file
(`versions/<sha>.jsonl`: every row but those) and training points at it: the trained-on data is the
reviewed data. Cleaning carries the marks to the rows' new numbers (`remap`).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from core.data.issues import Collector
from core.data.readers import ReadStats, read_records
from core.data.sniff import sniff
from core.workspace import atomic_write_text

MARKS = ("keep", "drop", "fix")
MARK_WORDS = {"keep": "Keep", "drop": "Drop", "fix": "Needs fix"}
NOTE_MAX = 500


def read_marks(d: Path, entry: dict) -> dict[int, dict]:
    """{record number: {"mark", "note"}} of a version (empty when never reviewed)."""
    rel = entry.get("marks")
    if not rel:
        return {}
    data = json.loads((d / rel).read_text(encoding="utf-8"))
    return {int(k): v for k, v in data.get("marks", {}).items()}


def store_marks(d: Path, marks: dict[int, dict]) -> dict:
    """Write a marks file (content-addressed, read-only) and return the version fields naming it."""
    text = json.dumps({"marks": {str(k): marks[k] for k in sorted(marks)}}, ensure_ascii=False, sort_keys=True)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    rel = f"marks/{digest[:16]}.json"
    if not (d / rel).exists():
        atomic_write_text(d / rel, text)
        os.chmod(d / rel, 0o444)
    return {"marks": rel, "marks_sha256": digest}


def remap(marks: dict[int, dict], kept: list[int]) -> dict[int, dict]:
    """Marks after a cleaning step: `kept` lists, in output order, the input record number of each
    output row (row k of the output was row kept[k-1]); marks of removed rows go with them."""
    return {new: marks[old] for new, old in enumerate(kept, 1) if old in marks}


def training_fields(d: Path, data_rel: str, marks: dict[int, dict]) -> dict:
    """The version fields for the file training reads: every row but those marked Drop. No drops: none
    (training reads the data file itself)."""
    drop = {r for r, v in marks.items() if v.get("mark") == "drop"}
    if not drop:
        return {}
    src = d / data_rel
    (d / "versions").mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".train-", suffix=".jsonl.tmp", dir=d / "versions")
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        if data_rel.startswith("versions/"):
            kept, left_out, unreadable = _copy_lines(src, f, drop)
        else:
            kept, left_out, unreadable = _copy_records(src, f, drop)
    h = hashlib.sha256(Path(tmp).read_bytes()).hexdigest()
    rel = f"versions/{h[:16]}.jsonl"
    if (d / rel).exists():
        os.unlink(tmp)
    else:
        os.replace(tmp, d / rel)
        os.chmod(d / rel, 0o444)
    return {"train": rel, "train_sha256": h, "train_rows": kept, "dropped": left_out, "unreadable_left_out": unreadable}


def _copy_lines(src: Path, f, drop: set) -> tuple[int, int, int]:
    """A version Danlu wrote: one record per line, row N on line N; lines are copied as they are
    (a tenth of a second for 100,000 rows, so marking a row stays quick)."""
    kept = left_out = 0
    with open(src, encoding="utf-8", newline="") as fi:
        for n, line in enumerate(fi, 1):
            if n in drop:
                left_out += 1
            else:
                f.write(line)
                kept += 1
    return kept, left_out, 0


def _copy_records(src: Path, f, drop: set) -> tuple[int, int, int]:
    """An upload as it came (CSV, JSON, ...): read record by record, written as JSONL."""
    kept = left_out = 0
    st = ReadStats()
    for _, rec_no, value, _ in read_records(src, sniff(src), Collector(keep=0), st):
        if rec_no in drop:
            left_out += 1
            continue
        f.write(json.dumps(value, ensure_ascii=False, default=str))
        f.write("\n")
        kept += 1
    return kept, left_out, st.rows - kept - left_out


TRAIN_FIELDS = ("train", "train_sha256", "train_rows", "dropped", "unreadable_left_out")


def version_fields(d: Path, data_rel: str, marks: dict[int, dict], prev: dict | None = None) -> dict:
    """Marks file and training file fields for a version with these marks (none when unmarked). `prev`:
    the version these marks replace; when it has the same data and the same rows marked Drop, its training
    file is the new one's too (a Keep or a note re-read and rewrote every row: half a second a click on
    50,000 rows, once anything was dropped)."""
    if not marks:
        return {}
    if prev is not None and prev.get("train") and prev.get("path") == data_rel and (d / prev["train"]).is_file() \
            and _drops(read_marks(d, prev)) == _drops(marks):
        return {**store_marks(d, marks), **{k: prev[k] for k in TRAIN_FIELDS if k in prev}}
    return {**store_marks(d, marks), **training_fields(d, data_rel, marks)}


def _drops(marks: dict[int, dict]) -> set[int]:
    return {r for r, v in marks.items() if v.get("mark") == "drop"}


def summary_of(marks: dict[int, dict], total: int) -> dict:
    """{keep, drop, fix, reviewed, total, share}: how far the review is."""
    out = {m: 0 for m in MARKS}
    for v in marks.values():
        if v.get("mark") in out:
            out[v["mark"]] += 1
    reviewed = sum(out.values())
    return {**out, "reviewed": reviewed, "total": total, "share": reviewed / total if total else 0.0}
