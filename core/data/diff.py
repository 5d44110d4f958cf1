"""What changed between two versions of a stored dataset: rows added, removed and changed, and marks.

    diff_versions(ws, ds_id, 2, 3)
    -> {"a": 2, "b": 3, "added": 0, "removed": 12, "changed": 3, "marks_changed": 40,
        "items": [{"status": "changed", "row_a": 7, "row_b": 7, "before": {...}, "after": {...}}, ...],
        "marks": [{"row": 9, "before": "", "after": "drop"}, ...], "shown": 100}

Rows are lined up by their content (difflib over row fingerprints), so a removed row shifts nothing
after it; an edited row sits where a row was removed and one added, and is shown as changed.
"""
from __future__ import annotations

import difflib
import json
from pathlib import Path

from core.data.issues import Collector
from core.data.marks import read_marks
from core.data.readers import ReadStats, read_records
from core.data.sniff import sniff
from core.errors import InputError, Problem
from core.messages import Msg, keep, recorded

SHOWN = 100


def _rows(path: Path) -> tuple[list[int], list[str]]:
    """(record numbers, canonical JSON of each record)."""
    nos, texts = [], []
    for _, rec_no, value, _ in read_records(path, sniff(path), Collector(keep=0), ReadStats()):
        nos.append(rec_no)
        texts.append(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str))
    return nos, texts


def _version(value, count: int) -> int:
    """A version number as a person or a direct API call gives it (an int, or its digits as text), or
    InputError naming the versions there are: "abc", 1.5 or a 5,000-digit text is no version."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if text.isdecimal() and len(text) <= len(str(count)) and int(text) < count:
        return int(text)
    raise InputError(problems=[Problem("version", Msg("diff.versions", last=count - 1), Msg("diff.versions.hint"))])


def diff_versions(ws, ds_id: str, a: int | str | None = None, b: int | str | None = None, limit: int = SHOWN) -> dict:
    """Version `a` (default: the one before `b`) against `b` (default: the current one); numbers as in info["version"]."""
    from core.data.store import _dir, _read, version_file
    d = _dir(ws, ds_id)
    m = _read(d)
    versions = m["versions"]
    b = len(versions) - 1 if b is None else _version(b, len(versions))
    a = max(0, b - 1) if a is None else _version(a, len(versions))
    va, vb = versions[a], versions[b]
    same_data = va["sha256"] == vb["sha256"]
    nos_a, rows_a = _rows(version_file(d, m, a))
    nos_b, rows_b = (nos_a, rows_a) if same_data else _rows(version_file(d, m, b))
    out = {"a": a, "b": b, "added": 0, "removed": 0, "changed": 0, "items": [], "marks": [], "marks_changed": 0,
           "rows_a": len(rows_a), "rows_b": len(rows_b)}
    pairs = []   # (row in a, row in b) of rows that are the same in both
    if same_data:
        pairs = list(zip(nos_a, nos_b))
    else:
        sm = difflib.SequenceMatcher(None, rows_a, rows_b, autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            if tag == "equal":
                pairs += list(zip(nos_a[i1:i2], nos_b[j1:j2]))
                continue
            n = min(i2 - i1, j2 - j1) if tag == "replace" else 0
            for k in range(n):
                _item(out, "changed", nos_a[i1 + k], nos_b[j1 + k], rows_a[i1 + k], rows_b[j1 + k], limit)
            for k in range(i1 + n, i2):
                _item(out, "removed", nos_a[k], None, rows_a[k], None, limit)
            for k in range(j1 + n, j2):
                _item(out, "added", None, nos_b[k], None, rows_b[k], limit)
    ma, mb = read_marks(d, va), read_marks(d, vb)
    for ra, rb in pairs:
        x, y = ma.get(ra, {}), mb.get(rb, {})
        if x.get("mark", "") != y.get("mark", "") or x.get("note", "") != y.get("note", ""):
            out["marks_changed"] += 1
            if len(out["marks"]) < limit:
                out["marks"].append({"row": rb, "before": x.get("mark", ""), "after": y.get("mark", ""),
                                     "note_before": x.get("note", ""), "note_after": y.get("note", "")})
    out["shown"] = len(out["items"])
    out.update(keep("summary_a", recorded(va, "summary")), **keep("summary_b", recorded(vb, "summary")))
    return out


def _item(out: dict, status: str, ra, rb, before, after, limit: int) -> None:
    out[status] += 1
    if len(out["items"]) < limit:
        out["items"].append({"status": status, "row_a": ra, "row_b": rb, "before": None if before is None else json.loads(before),
                             "after": None if after is None else json.loads(after)})
