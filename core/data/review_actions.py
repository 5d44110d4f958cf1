"""What a reviewer does to a stored dataset; each change is a new version (Undo takes it back).

    row_view(desk, row)                              -> {row, line, position, record, conversation, mark, note, hits}
    mark_rows(ws, id, [3, 17], "drop", note="wrong dose")   -> {summary, changed, dataset}
    edit_turn(ws, id, row, "messages[2].content", "new text")   (the `edit` cleaning operation)
    scan_file(path, kinds, names)                    -> {rows, hits: [{row, line, field, kind, text, id}], counts}
    scan_dataset(ws, id, kinds, names)               the same for the current version
    redact(ws, id, kinds=..., names=..., hits=[ids]) (the `redact` cleaning operation)
    export_marks(ws, id, dest) / import_marks(ws, id, csv_path, prefer="mine"|"theirs")
"""
from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from core.data import pii
from core.data.conversation import conversation, set_path
from core.data.issues import Collector
from core.data.marks import MARK_WORDS, MARKS, NOTE_MAX, read_marks, version_fields
from core.data.readers import ReadStats, read_records
from core.data.review import Desk
from core.data.sniff import sniff
from core.errors import InputError, Problem
from core.messages import Msg, keep

MARK_ALIASES = {**{m: m for m in MARKS}, **{w.lower(): m for m, w in MARK_WORDS.items()}, "needs_fix": "fix",
                "保留": "keep", "删除": "drop", "需修改": "fix"}
CSV_COLUMNS = ("row", "line", "mark", "note", "fingerprint")


def row_view(desk: Desk, row: int, kinds=pii.KINDS, names=None) -> dict | None:
    """One row for reading: the record, its turns, its mark and its sensitive-data findings."""
    i = desk.index.position(row)
    if i is None:
        return None
    rec = desk.index.record(i)
    mark = desk.marks.get(int(row), {})
    hits = [{"field": p, "kind": h.kind, "text": h.text, "start": h.start, "end": h.end, "id": pii.hit_id(row, p, h)}
            for p, h in pii.scan_record(rec, kinds, names)]
    line = int(desk.index.lines[i])
    return {"row": int(row), "line": None if line < 0 else line, "position": i, "record": rec,
            "conversation": conversation(rec, desk.index.fmt, desk.index.column_map), "mark": mark.get("mark", ""),
            "note": mark.get("note", ""), "hits": hits, "tokens": int(desk.index.tokens[i]),
            "lang": desk.index.langs[desk.index.lang[i]], "dup": int(desk.index.dup[i]),
            "problems": [c for b, c in enumerate(desk.index.codes) if (int(desk.index.problems[i]) >> b) & 1]}


def _mark(value: str | None) -> str:
    m = MARK_ALIASES.get(str(value or "").strip().lower())
    if m is None and str(value or "").strip():
        raise InputError(problems=[Problem("mark", Msg("review.unknown_mark", value=repr(value)), Msg("review.unknown_mark.hint"))])
    return m or ""


def mark_rows(ws, ds_id: str, rows, mark: str | None, note: str | None = None) -> dict:
    """Mark rows Keep / Drop / Needs fix (mark "" clears); a note (None: leave notes as they are).
    A new version with the same data; rows not in the current version are refused."""
    from core.data.store import add_version
    mark = _mark(mark)
    rows = sorted({int(r) for r in rows})
    if note is not None and len(note) > NOTE_MAX:
        raise InputError(problems=[Problem("note", Msg("review.note_long", n=len(note)), Msg("review.note_long.hint", max=NOTE_MAX))])
    if not rows:
        raise InputError(problems=[Problem("rows", Msg("review.no_rows"), Msg("review.no_rows.hint"))])
    from core.data.review import open_desk
    desk = open_desk(ws, ds_id)
    missing = [r for r in rows if desk.index.position(r) is None]
    if missing:
        raise InputError(problems=[Problem("rows", Msg("review.row_gone", row=r), Msg("review.reload.hint"))
                                   for r in missing[:20]])
    word = Msg("review.mark." + mark) if mark in MARK_WORDS else Msg("review.mark.none")

    def make(d, m):
        cur = m["versions"][-1]
        if cur["sha256"] != desk.info["current_sha256"]:
            raise InputError(problems=[Problem(m["display_name"], Msg("review.changed"), Msg("review.changed.hint"))])
        marks = read_marks(d, cur)
        before = json.dumps(marks, sort_keys=True)
        for r in rows:
            if mark:
                marks[r] = {"mark": mark, "note": (note if note is not None else marks.get(r, {}).get("note", "")).strip()}
            else:
                marks.pop(r, None)
        if json.dumps(marks, sort_keys=True) == before:
            return None
        what = Msg("review.row", row=rows[0]) if len(rows) == 1 else Msg("review.rows", n=len(rows))
        said = Msg("review.marked", what=what, mark=word) if mark else Msg("review.cleared", what=what)
        return {"op": "mark", "params": {"mark": mark, "rows": len(rows)}, **keep("summary", said), "sha256": cur["sha256"],
                "path": cur["path"], **version_fields(d, cur["path"], marks, prev=cur)}
    res = add_version(ws, ds_id, make)
    if res["changed"]:
        return {"summary": res["entry"]["summary"], "summary_msg": res["entry"]["summary_msg"], "changed": True,
                "dataset": res["dataset"]}
    return {**keep("summary", Msg("review.already", n=len(rows), mark=word)), "changed": False, "dataset": res["dataset"]}


def edit_turn(ws, ds_id: str, row: int, path: str, text: str) -> dict:
    """Replace one text of one row (a turn, or a column) in place: the `edit` operation, a new version."""
    from core.data.review import open_desk
    from core.data.store import apply_op
    desk = open_desk(ws, ds_id)
    i = desk.index.position(row)
    if i is None:
        raise InputError(problems=[Problem(f"row {row}", Msg("review.not_in_version"), Msg("review.reload.hint"))])
    rec = desk.index.record(i)
    try:
        set_path(rec, path, text)
    except (KeyError, IndexError, TypeError):
        raise InputError(problems=[Problem(f"row {row} {path}", Msg("review.not_a_text"), Msg("review.not_a_text.hint"))]) from None
    res = apply_op(ws, ds_id, "edit", row=int(row), record=rec)
    info = res["dataset"]
    if res["changed"] and Path(desk.info["current_path"]).parent.name == "versions" and \
            (desk.index.lines == desk.index.rows).all():
        # a version Danlu wrote (row N on line N): the new version's index is the old one with this row
        # replaced, not a re-read of every row
        from core.data.review_index import remember, with_row
        remember(info["current_sha256"], info["format"], info["column_map"] or None,
                 with_row(desk.index, i, rec, info["current_path"]))
    return res


def scan_file(path, kinds=pii.KINDS, names=None, column_map: dict | None = None) -> dict:
    """Every finding in a file: {rows, hits: [{row, line, field, kind, text, id}], counts: {kind: n}}."""
    path = Path(path)
    sn = sniff(path)
    if sn.refusal is not None:
        raise InputError(problems=[sn.refusal.to_problem(path.name)], title=Msg("review.scan_title", file=path.name))
    pattern = pii.names_pattern(names)
    st = ReadStats()
    hits, count = [], {}
    for line, rec_no, value, _ in read_records(path, sn, Collector(keep=0), st, column_map=column_map):
        for p, h in pii.scan_record(value, kinds, pattern):
            hits.append({"row": rec_no, "line": line, "field": p, "kind": h.kind, "text": h.text, "id": pii.hit_id(rec_no, p, h)})
            count[h.kind] = count.get(h.kind, 0) + 1
    return {"rows": st.rows, "hits": hits, "counts": count}


def scan_dataset(ws, ds_id: str, kinds=pii.KINDS, names=None) -> dict:
    from core.data.store import _dir, _read, get_dataset, version_file
    info, d = get_dataset(ws, ds_id), _dir(ws, ds_id)
    m = _read(d)
    path = version_file(d, m, len(m["versions"]) - 1)  # a missing file said, not a FileNotFoundError
    return scan_file(path, kinds, names, info["column_map"] or None)


def redact(ws, ds_id: str, kinds=pii.KINDS, names=None, hits=None) -> dict:
    """Replace findings with placeholders: every one of `kinds`, or only the listed finding ids."""
    from core.data.store import apply_op
    return apply_op(ws, ds_id, "redact", kinds=",".join(kinds), names=",".join(names or []), hits=list(hits or []))


def fingerprint(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def export_marks(ws, ds_id: str, dest) -> Path:
    """The current version's marks as CSV: row, line, mark, note, fingerprint (the row's content, so
    an import can tell when a row changed or moved)."""
    from core.data.review import open_desk
    desk = open_desk(ws, ds_id)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", encoding="utf-8-sig", newline="") as f:  # the BOM: Excel reads it as UTF-8
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for row in sorted(desk.marks):
            i = desk.index.position(row)
            if i is None:
                continue
            v = desk.marks[row]
            line = int(desk.index.lines[i])
            w.writerow([row, "" if line < 0 else line, v.get("mark", ""), csv_text(v.get("note", "")), fingerprint(desk.index.raw[i])])
    return dest


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(note: str) -> str:
    """A note as a spreadsheet cell: one that starts with = + - @ (or a tab, a carriage return) is run as
    a formula when the CSV is opened (=cmd|' /C calc'!A0), so it is written after a ' that keeps it text;
    import_marks takes the ' off again."""
    return "'" + note if note[:1] in FORMULA_STARTS else note


def csv_note(cell: str) -> str:
    """A note as csv_text wrote it, back as it was."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in FORMULA_STARTS else cell
