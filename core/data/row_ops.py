"""Operations on rows the user picked, one by one or by their findings, as the review desk sends them:

    edit    row record      replace row number `row` (1-based) with `record` (a JSON object)
    delete  rows            drop the listed row numbers ("3, 7; 12")
    redact  kinds names hits   replace sensitive data (core/data/pii.py) by placeholders

Like every operation they stream (row number, record) and count what they did (core/data/ops.py).
"""
from __future__ import annotations

import json

from core.data.ops import Op, _int, record_bytes
from core.data.readers import MAX_RECORD_BYTES, big_number, make_decoder
from core.errors import InputError, Problem
from core.messages import Msg, sizes_over


class Edit(Op):
    name, PARAMS = "edit", ("row", "record")

    def validate(self):
        super().validate()
        self.row = _int(self.params.get("row"), "row", 1)
        rec = self.params.get("record")
        if isinstance(rec, str):
            seen: list = []
            try:
                rec = make_decoder(seen).decode(rec)  # nesting too deep is a JSONDecodeError too
            except json.JSONDecodeError as e:
                raise InputError(problems=[Problem("edit record", Msg("clean.edit_json", error=e.msg, column=e.colno),
                                                   Msg("clean.edit_json.hint"))])
            if seen:  # what a row of the file may not hold, said as the check says it: never written into a version
                raise InputError(problems=[Problem("edit record", *_said(code, what)) for code, what in seen])
        if type(rec) is not dict:
            raise InputError(problems=[Problem("edit record", Msg("clean.edit_not_object"), Msg("clean.edit_not_object.hint"))])
        # a line longer than the readers take was saved, and the next read of the version found that row
        # unreadable: every later step (a mark, a redaction, training) refused the dataset or left the row out
        size = record_bytes(rec)
        if size > MAX_RECORD_BYTES:
            raise InputError(problems=[Problem(f"edit record (row {self.row})", Msg("read.record_is_mb", **sizes_over(size, MAX_RECORD_BYTES)),
                                               Msg("read.line_mb.hint"))])
        self.record = rec
        self.found = False

    def apply(self, no, rec):
        if no == self.row:
            self.found = True
            self.changed += rec != self.record
            return self.record
        return rec

    def refusal(self):
        return super().refusal() + ([] if self.found else [missing_row("edit row", self.row, self.rows_in)])

    def summary(self):
        return Msg("clean.row_changed" if self.changed else "clean.row_unchanged", row=self.row)


def missing_row(where: str, row: int, total: int) -> Problem:
    """The row an edit or a swap names is not in the file: said with how many rows it has (it was a
    summary, "nothing changed", and `clean` exited 0 as if it had worked)."""
    return Problem(where, Msg("clean.row_missing", row=row, total=total), Msg("clean.row_range.hint", total=total) if total else None)


def _said(code: str, what: str) -> tuple[Msg, Msg]:
    """A problem the strict decoder noted (core.data.readers.report_seen), as message and hint: a number too
    long to read (the decoder put a stand-in in its place), NaN or Infinity (not JSON), a key twice (Python
    keeps the last one silently)."""
    if code == "big_number":
        return big_number(what), Msg("read.big_number.hint")
    if code == "nan":
        return Msg("read.nan", what=what), Msg("read.nan.hint")
    return Msg("read.duplicate_key", key=what), Msg("read.duplicate_key.hint")


class Delete(Op):
    name, PARAMS = "delete", ("rows",)

    def validate(self):
        super().validate()
        rows = self.params.get("rows")
        if isinstance(rows, str):
            rows = [r for r in rows.replace(";", ",").split(",") if r.strip()]
        if isinstance(rows, int):
            rows = [rows]
        if not rows:
            raise InputError(problems=[Problem("delete rows", Msg("clean.no_rows"), Msg("clean.no_rows.hint"))])
        self.rows = {_int(r, "rows", 1) for r in rows}
        self.found: set[int] = set()

    def apply(self, no, rec):
        if no in self.rows:
            self.found.add(no)
            return None
        return rec

    def refusal(self):
        """A row number that is not in the file refuses the whole step, as an edit's does: `clean delete
        rows=3,99` on a 5-row file deleted row 3, said "1 row number(s) not found" and exited 0."""
        missing = sorted(self.rows - self.found)
        return super().refusal() + [missing_row("delete rows", r, self.rows_in) for r in missing[:20]]

    def summary(self):
        return Msg("clean.deleted", n=self.removed)


class Redact(Op):
    """Sensitive data (core/data/pii.py) replaced by placeholders: every finding of `kinds`, or only
    the findings listed in `hits` ("ROW:FIELD:START:KIND", as review's scan names them)."""
    name, PARAMS = "redact", ("kinds", "names", "hits")

    def validate(self):
        super().validate()
        from core.data import pii
        kinds = self.params.get("kinds") or ",".join(pii.KINDS)
        kinds = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else list(kinds)
        unknown = [k for k in kinds if k and k not in pii.ALL_KINDS]
        if unknown:
            raise InputError(problems=[Problem("redact kinds", Msg("pii.unknown_kind", value=repr(k)),
                                               Msg("pii.use_kinds.hint", kinds=", ".join(pii.ALL_KINDS))) for k in unknown])
        names = self.params.get("names") or []
        names = [n for n in names.split(",")] if isinstance(names, str) else list(names)
        self.kinds = tuple(k for k in kinds if k) + (("name",) if any(n.strip() for n in names) else ())
        self.names = pii.names_pattern(names)
        self.only = pii.hit_keys(self.params.get("hits"))
        self.by_kind: dict[str, int] = {}

    def apply(self, no, rec):
        from core.data import pii
        only = None if self.only is None else self.only.get(no, set())
        if only is not None and not only:
            return rec
        hits = [(p, h) for p, h in pii.scan_record(rec, self.kinds, self.names)
                if only is None or (p, h.start, h.kind) in only]
        if hits:
            pii.redact_record(rec, self.kinds, self.names, only={(p, h.start, h.kind) for p, h in hits})
            for _, h in hits:
                self.by_kind[h.kind] = self.by_kind.get(h.kind, 0) + 1
            self.changed += 1
            self.note_size(no, rec)  # "[NAME]" for each "Al" of a long row
        return rec

    def summary(self):
        n = sum(self.by_kind.values())
        kinds = [Msg("clean.redact_kind", n=c, kind=Msg("pii.kind." + k))
                 for k, c in sorted(self.by_kind.items(), key=lambda kv: -kv[1])]
        if kinds:
            return Msg("clean.redact_kinds", n=n, kinds=kinds, rows=self.changed, total=self.rows_in)
        return Msg("clean.redact", n=n, rows=self.changed, total=self.rows_in)
