"""Read a dataset file into training examples (used by the recipes and by `check-data`).

Formats are detected by content, not by extension: Parquet starts with PAR1, XLSX with a zip
header, JSON with `[` or `{`. Values are kept as text exactly as written (no "NA" -> empty).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from core.data.formats import FORMAT_NAMES, detect_format, to_example
from core.errors import InputError, Problem

MAX_PROBLEMS = 200


@dataclass
class LoadedData:
    format: str
    examples: list[dict]
    rows: int
    problems: list[Problem] = field(default_factory=list)


def sniff_kind(path: Path) -> str:
    """'parquet' | 'xlsx' | 'json' | 'jsonl' | 'csv' | 'tsv' from the first bytes (and the name as a tie-break)."""
    with open(path, "rb") as f:
        head = f.read(65536)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    text = head.decode("utf-8-sig", errors="replace").lstrip()
    if text.startswith("["):
        return "json"
    if text.startswith("{"):
        first = text.split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl"
        except json.JSONDecodeError:
            return "json" if "\n" in text.strip() else "jsonl"
    first_line = text.split("\n", 1)[0]
    return "tsv" if first_line.count("\t") > first_line.count(",") else "csv"


def iter_records(path: Path) -> Iterator[tuple[str, object]]:
    """Yield (where, record) with `where` like 'line 12' or 'record 3 (line 5)'."""
    kind = sniff_kind(path)
    if kind == "jsonl":
        with open(path, encoding="utf-8-sig", newline="") as f:
            for n, line in enumerate(f, 1):  # iterate the file, never splitlines(): U+2028 must not split
                if not line.strip():
                    continue
                try:
                    yield f"line {n}", json.loads(line)
                except json.JSONDecodeError as e:
                    yield f"line {n}", InputError(problems=[Problem(f"line {n}", f"not valid JSON ({e.msg} at column {e.colno})",
                                                                    "fix the line or remove it")])
    elif kind == "json":
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else [data]
        for i, rec in enumerate(data, 1):
            yield f"record {i}", rec
    elif kind in ("csv", "tsv"):
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if kind == "tsv" else ",")
            for i, row in enumerate(reader, 1):
                yield f"record {i} (line {reader.line_num})", _unjson_cells(row)
    elif kind == "parquet":
        import pyarrow.parquet as pq
        for i, row in enumerate(pq.read_table(path).to_pylist(), 1):
            yield f"record {i}", row
    elif kind == "xlsx":
        import openpyxl
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        rows = wb.worksheets[0].iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows, [])]
        for i, row in enumerate(rows, 2):
            yield f"row {i}", {h: ("" if v is None else str(v)) for h, v in zip(header, row) if h}


def _unjson_cells(row: dict) -> dict:
    """A CSV cell holding a JSON list (e.g. a messages column) is parsed; other cells stay text."""
    out = {}
    for k, v in row.items():
        if k is None:
            continue
        if isinstance(v, str) and v.lstrip().startswith("[") and k in ("messages", "conversations"):
            try:
                v = json.loads(v)
            except json.JSONDecodeError:
                pass
        out[k.strip()] = v
    return out


def load_examples(path: str | Path, fmt: str = "auto", column_map: dict | None = None) -> LoadedData:
    """Every usable record as an example; raise InputError when any record is unusable."""
    path = Path(path)
    problems: list[Problem] = []
    examples: list[dict] = []
    rows = 0
    detected = None if fmt == "auto" else fmt
    if detected is not None and detected not in FORMAT_NAMES:
        raise InputError(problems=[Problem("dataset_format", f"unknown format {fmt!r}", f"use one of {', '.join(FORMAT_NAMES)}")])
    try:
        records = list(iter_records(path))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise InputError(problems=[Problem(path.name, f"could not be read: {e}", "save it as UTF-8 JSONL, CSV or Parquet")],
                         title=f"{path.name} cannot be used")
    for where, rec in records:
        rows += 1
        if isinstance(rec, InputError):
            problems += rec.problems
            continue
        if not isinstance(rec, dict):
            problems.append(Problem(where, f"expected an object, got {type(rec).__name__}", "each record must be a {...} object"))
            continue
        if detected is None:
            detected = detect_format(rec, column_map)
            if detected is None:
                problems.append(Problem(where, f"cannot tell the format from the fields {sorted(rec)[:6]}",
                                        "name the columns messages, conversations, instruction/output, prompt/completion "
                                        "or text, or map your column names (column_map)"))
                break
        ex, probs = to_example(rec, detected, column_map, where)
        problems += probs
        if ex is not None:
            examples.append(ex)
        if len(problems) >= MAX_PROBLEMS:
            break
    if not rows:
        problems.append(Problem(path.name, "the file has no records", "add examples to the file"))
    if problems:
        raise InputError(problems=problems, title=f"{path.name} has problems")
    return LoadedData(format=detected, examples=examples, rows=rows)
