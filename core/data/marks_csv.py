"""Bring another reviewer's marks (a CSV from export_marks) into a dataset: split the work, merge the marks.

    import_marks(ws, ds_id, "anna.csv", origin=trust.SHELL)  -> {summary, applied, same, conflicts, problems, changed, dataset}
    import_marks(ws, ds_id, "anna.csv", prefer="theirs")  conflicts take the file's mark (said in the summary)

A row is found by its number when its fingerprint (its content) still matches, else by the
fingerprint alone (it moved, e.g. after removing duplicates). A row marked differently here and in
the file is a conflict: listed, and left as it is here unless prefer="theirs" is asked for. Rows the
file names that are gone or changed are listed as problems. Everything else is applied as one new
version.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from core.data.marks import MARK_WORDS, NOTE_MAX, read_marks, version_fields
from core.data.review_actions import _mark, csv_note, fingerprint
from core.errors import InputError, Problem
from core.messages import Msg, keep, size_msg

MAX_CSV_BYTES = 32 << 20
CELL_MAX = 131_072  # csv's own default field limit: a mark's note is cut to NOTE_MAX anyway
SUFFIXES = (".csv",)  # what the page's marks upload takes by name (the upload button takes any file)


def _refused(name: str, said: Msg, hint: Msg | None = None, where: str | None = None) -> InputError:
    """The import is refused, titled so (on the page it said "Problems to fix before training")."""
    return InputError(problems=[Problem(name if where is None else where, said, hint)], title=Msg("marks.title", file=name))


def read_csv(path) -> list[dict]:
    path = Path(path)
    if path.stat().st_size > MAX_CSV_BYTES:
        raise _refused(path.name, Msg("marks.too_big", limit=size_msg(MAX_CSV_BYTES)), Msg("marks.too_big.hint"))
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _refused(path.name, Msg("marks.not_utf8"), Msg("marks.save_csv.hint")) from None
    reader, rows = csv.DictReader(io.StringIO(text)), []
    try:  # a cell over csv's limit stopped the import with a bare csv.Error; a dataset read may have raised
        for row in reader:  # that limit for the whole process, so the same bound is checked here too
            if any(isinstance(v, str) and len(v) > CELL_MAX for v in row.values()):
                raise csv.Error
            rows.append(row)
    except csv.Error:
        said = Msg("marks.bad_cell", max=CELL_MAX, line=reader.reader.line_num)
        raise _refused(path.name, said, Msg("marks.save_csv.hint")) from None
    cols = {c.strip().lower() for c in (rows[0].keys() if rows else [])}
    if rows and not {"row", "mark"} <= cols:
        raise _refused(path.name, Msg("marks.columns", columns=", ".join(sorted(cols))), Msg("marks.columns.hint"))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in rows]


def _locate(desk, item: dict, by_print: dict) -> int | None:
    """The row number in this version that the file's row means, or None."""
    row = item.get("row", "")
    fp = item.get("fingerprint", "")
    # ASCII digits only, and no longer than a row number can be: int('٣') is 3, and int() of 5,000 digits
    # stopped the import with ValueError
    i = desk.index.position(int(row)) if row.isascii() and row.isdigit() and len(row) < 16 else None
    if i is not None and (not fp or fingerprint(desk.index.raw[i]) == fp):
        return int(row)
    if fp and fp in by_print:
        return by_print[fp]
    return None


def plan(desk, items: list[dict], prefer: str = "mine") -> dict:
    """What an import would do: {updates: {row: mark}, same, conflicts, problems}."""
    by_print = {}
    if any(it.get("fingerprint") for it in items):
        for i, raw in enumerate(desk.index.raw):
            by_print.setdefault(fingerprint(raw), int(desk.index.rows[i]))
    updates, conflicts, problems, same = {}, [], [], 0
    first: dict[int, tuple[int, str]] = {}  # row: (line, mark) where the file names it first
    for n, it in enumerate(items, 2):   # line 1 is the header
        try:
            mark = _mark(it.get("mark"))
        except InputError as e:
            problems.append(Problem(f"line {n}", e.problems[0].msg, e.problems[0].hint_msg))
            continue
        if not mark:
            continue
        row = _locate(desk, it, by_print)
        if row is None:
            problems.append(Problem(f"line {n} (row {it.get('row') or '?'})", Msg("marks.row_gone"), Msg("marks.row_gone.hint")))
            continue
        if row in first:  # the file's own earlier line was listed as the mark "here", which it never was
            if first[row][1] != mark:
                problems.append(Problem(f"line {n}", Msg("marks.twice", row=row, line=first[row][0]), Msg("marks.twice.hint")))
            continue
        first[row] = (n, mark)
        theirs = {"mark": mark, "note": csv_note(it.get("note", ""))[:NOTE_MAX]}
        mine = desk.marks.get(row)
        if mine and mine.get("mark") == mark:
            same += 1
            if theirs["note"] and not mine.get("note"):
                updates[row] = theirs
            continue
        if mine and mine.get("mark") != mark:
            conflicts.append({"row": row, "mine": mine.get("mark"), "mine_note": mine.get("note", ""), "theirs": mark,
                              "theirs_note": theirs["note"]})
            if prefer != "theirs":
                continue
        updates[row] = theirs
    return {"updates": updates, "same": same, "conflicts": conflicts, "problems": problems}


def import_marks(ws, ds_id: str, path, prefer: str = "mine", *, origin: str) -> dict:
    """origin (core.trust): a CSV named by the page must be an upload inside the allowed folders, named
    .csv (trust.check_upload)."""
    from core import trust
    from core.data.review import open_desk
    from core.data.store import add_version
    path = trust.check_upload(path, ws, origin, field="marks file", suffixes=SUFFIXES, hint=Msg("marks.save_csv.hint"))
    if prefer not in ("mine", "theirs"):
        raise _refused(Path(path).name, Msg("marks.bad_prefer", value=repr(prefer)), Msg("marks.bad_prefer.hint"), where="prefer")
    desk = open_desk(ws, ds_id)
    p = plan(desk, read_csv(path), prefer)
    applied = len(p["updates"])

    def make(d, m):
        cur = m["versions"][-1]
        if cur["sha256"] != desk.info["current_sha256"]:
            raise _refused(Path(path).name, Msg("marks.changed"), Msg("marks.changed.hint"), where=m["display_name"])
        if not p["updates"]:
            return None
        marks = {**read_marks(d, cur), **p["updates"]}
        return {"op": "import-marks", "params": {"file": Path(path).name, "prefer": prefer},
                **keep("summary", Msg("marks.imported_from", n=applied, file=Path(path).name)), "sha256": cur["sha256"],
                "path": cur["path"],
                **version_fields(d, cur["path"], marks, prev=cur)}
    res = add_version(ws, ds_id, make)
    n_conf = len(p["conflicts"])
    conflicts = Msg("marks.conflicts_theirs" if prefer == "theirs" else "marks.conflicts_mine", n=n_conf) if n_conf else ""
    summary = Msg("marks.summary", head=Msg("marks.imported", n=applied) if res["changed"] else Msg("marks.none"),
                  same=Msg("marks.same", n=p["same"]) if p["same"] else "", conflicts=conflicts,
                  missing=Msg("marks.not_found", n=len(p["problems"])) if p["problems"] else "")
    return {**keep("summary", summary), "applied": applied if res["changed"] else 0, "same": p["same"], "conflicts": p["conflicts"],
            "problems": p["problems"], "changed": res["changed"], "dataset": res["dataset"],
            "words": MARK_WORDS}
