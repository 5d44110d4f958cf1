"""The cleaning operations, one class each. Rows flow through as (row number, record); each
operation counts what it removed or changed and says it in `summary()` ("removed 12 duplicate
rows (of 1,000)"). The list and parameters are in core/data/clean.py.
"""
from __future__ import annotations

import json
import re

from core.data.issues import TITLES, WARNING_CODES
from core.data.textfields import answer_slot, canonical, normalised, text_slots, turn_role
from core.errors import InputError, Problem


class Op:
    """One step. Rows flow through as (row number, record); `summary()` says what happened."""
    needs_tokenizer = False

    def __init__(self, ctx: "Ctx", **params):
        self.ctx = ctx
        self.params = params
        self.rows_in = 0
        self.removed = 0
        self.changed = 0
        self.validate()

    def validate(self) -> None:
        unknown = set(self.params) - set(self.PARAMS)
        if unknown:
            raise InputError(problems=[Problem(f"{self.name} {k}", "is not a parameter of this operation",
                                               f"parameters: {', '.join(self.PARAMS) or 'none'}") for k in sorted(unknown)])

    PARAMS: tuple = ()
    name = ""

    def __call__(self, rows):
        for no, rec in rows:
            self.rows_in += 1
            out = self.apply(no, rec)
            if out is None:
                self.removed += 1
            else:
                yield no, out

    def apply(self, no, rec):
        return rec

    def touched(self) -> int:
        return self.removed + self.changed

    def summary(self) -> str:
        return f"{self.name}: {self.removed:,} removed, {self.changed:,} changed (of {self.rows_in:,})"


class Dedupe(Op):
    name, PARAMS = "dedupe", ("near",)

    def validate(self):
        super().validate()
        self.near = _bool(self.params.get("near", False), "near")
        self.seen: set = set()

    def apply(self, no, rec):
        key = normalised(rec, self.ctx.fmt, self.ctx.column_map) if self.near else canonical(rec)
        if key in self.seen:
            return None
        self.seen.add(key)
        return rec

    def summary(self):
        kind = "near-duplicate" if self.near else "duplicate"
        return f"removed {self.removed:,} {kind} row{'s' * (self.removed != 1)} (of {self.rows_in:,})"


class DropEmpty(Op):
    name = "drop-empty"

    def apply(self, no, rec):
        if type(rec) is not dict:
            return rec
        _, issues = self.ctx.schema.check(rec, False)
        if any(code in ("empty_text", "missing_field") for code, *_ in issues):
            return None
        return rec

    def summary(self):
        return f"dropped {self.removed:,} row{'s' * (self.removed != 1)} with missing or empty text (of {self.rows_in:,})"


class DropInvalid(Op):
    name = "drop-invalid"

    def validate(self):
        super().validate()
        self.by_code: dict[str, int] = {}

    def apply(self, no, rec):
        if type(rec) is not dict:
            self.by_code["not_object"] = self.by_code.get("not_object", 0) + 1
            return None
        _, issues = self.ctx.schema.check(rec, False)
        codes = {code for code, *_ in issues if code not in WARNING_CODES}
        if not codes:
            return rec
        for code in codes:
            self.by_code[code] = self.by_code.get(code, 0) + 1
        return None

    def summary(self):
        unreadable = self.ctx.unreadable
        total = self.removed + unreadable
        parts = [f"{n:,} {TITLES.get(c, c)}" for c, n in sorted(self.by_code.items(), key=lambda kv: -kv[1])]
        if unreadable:
            parts.insert(0, f"{unreadable:,} unreadable")
        return f"dropped {total:,} row{'s' * (total != 1)} with problems" + (f" ({'; '.join(parts)})" if parts else "") + \
            f" (of {self.rows_in + unreadable:,})"

    def touched(self):
        return self.removed + self.ctx.unreadable


class Trim(Op):
    name = "trim"

    def validate(self):
        super().validate()
        self.fields = 0

    def apply(self, no, rec):
        hit = False
        for obj, key, _ in text_slots(rec, self.ctx.fmt, self.ctx.column_map):
            v = obj[key]
            t = v.strip()
            if t != v:
                obj[key] = t
                self.fields += 1
                hit = True
        self.changed += hit
        return rec

    def summary(self):
        return f"trimmed spaces in {self.fields:,} text{'s' * (self.fields != 1)} in {self.changed:,} row{'s' * (self.changed != 1)} " \
               f"(of {self.rows_in:,})"


class MergeTurns(Op):
    name = "merge-turns"

    def validate(self):
        super().validate()
        self.merged = 0

    def apply(self, no, rec):
        fmt, cmap = self.ctx.fmt, self.ctx.column_map
        if fmt not in ("messages", "sharegpt") or type(rec) is not dict:
            return rec
        key = cmap.get("messages" if fmt == "messages" else "conversations", "messages" if fmt == "messages" else "conversations")
        turns = rec.get(key)
        if type(turns) is not list:
            return rec
        out: list = []
        merged = 0
        for t in turns:
            prev = out[-1] if out else None
            if (type(t) is dict and type(prev) is dict and turn_role(t) is not None and turn_role(t) == turn_role(prev)):
                k = "value" if "value" in t or "from" in t else "content"
                if type(prev.get(k)) is str and type(t.get(k)) is str:
                    prev[k] = prev[k].rstrip() + "\n\n" + t[k].lstrip()
                    merged += 1
                    continue
            out.append(t)
        if merged:
            rec[key] = out
            self.merged += merged
            self.changed += 1
        return rec

    def summary(self):
        if self.ctx.fmt not in ("messages", "sharegpt"):
            return f"nothing to merge: {self.ctx.fmt} rows have no turns"
        return f"merged {self.merged:,} same-role turn{'s' * (self.merged != 1)} in {self.changed:,} row{'s' * (self.changed != 1)} " \
               f"(of {self.rows_in:,})"


class _Long(Op):
    PARAMS = ("max_seq_length",)
    needs_tokenizer = True

    def validate(self):
        super().validate()
        self.max_len = _int(self.params.get("max_seq_length", self.ctx.max_seq_length), "max_seq_length", 16)
        self.unmeasured = 0

    def length(self, rec) -> int | None:
        if type(rec) is not dict:
            return None
        ex, _ = self.ctx.schema.check(rec, True)
        if ex is None:
            return None
        from core.data.render import render
        return len(render(self.ctx.tokenizer(), ex, False).ids)

    def apply(self, no, rec):
        n = self.length(rec)
        if n is None:
            self.unmeasured += 1
            return rec
        return rec if n <= self.max_len else self.too_long(rec, n)

    def too_long(self, rec, n):
        return None

    def note(self) -> str:
        return f"; {self.unmeasured:,} row(s) with problems were kept unmeasured" if self.unmeasured else ""


class FilterLong(_Long):
    name = "filter-long"

    def summary(self):
        return f"dropped {self.removed:,} row{'s' * (self.removed != 1)} longer than {self.max_len:,} tokens " \
               f"(of {self.rows_in:,}){self.note()}"


class TruncateLong(_Long):
    name = "truncate-long"

    def too_long(self, rec, n):
        slot = answer_slot(rec, self.ctx.fmt, self.ctx.column_map)
        if slot is None:
            return None
        obj, key, _ = slot
        answer = obj[key]
        tok = self.ctx.tokenizer()
        offsets = tok(answer, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        keep = len(offsets) - (n - self.max_len)
        for _ in range(12):  # templates add a token or two around the answer: converge in a few steps
            if keep <= 0:
                return None
            obj[key] = answer[:offsets[keep - 1][1]]
            if not obj[key].strip():
                return None
            n2 = self.length(rec)
            if n2 is not None and n2 <= self.max_len:
                self.changed += 1
                return rec
            keep -= max(1, (n2 or n) - self.max_len)
        return None

    def summary(self):
        return f"shortened the answer of {self.changed:,} row{'s' * (self.changed != 1)} to fit {self.max_len:,} tokens; " \
               f"dropped {self.removed:,} whose question alone is too long (of {self.rows_in:,}){self.note()}"


class Replace(Op):
    name, PARAMS = "replace", ("find", "with", "replacement", "regex", "ignore_case", "role")

    def validate(self):
        super().validate()
        find = self.params.get("find")
        if not isinstance(find, str) or not find:
            raise InputError(problems=[Problem("replace find", "nothing to find", "give the text to find, e.g. find=colour")])
        self.repl = str(self.params.get("with", self.params.get("replacement", "")))  # `with` is a Python keyword
        self.role = self.params.get("role", "all")
        if self.role not in ("all", "system", "user", "assistant"):
            raise InputError(problems=[Problem("replace role", f"unknown role {self.role!r}", "use all, system, user or assistant")])
        flags = re.IGNORECASE if _bool(self.params.get("ignore_case", False), "ignore_case") else 0
        try:
            self.pattern = re.compile(find if _bool(self.params.get("regex", False), "regex") else re.escape(find), flags)
        except re.error as e:
            raise InputError(problems=[Problem("replace find", f"not a valid pattern: {e}", "fix it, or use regex=false")])
        if not _bool(self.params.get("regex", False), "regex"):
            self.repl = self.repl.replace("\\", "\\\\")  # literal replacement text
        self.count = 0

    def apply(self, no, rec):
        hit = False
        for obj, key, _ in text_slots(rec, self.ctx.fmt, self.ctx.column_map, self.role):
            new, n = self.pattern.subn(self.repl, obj[key])
            if n:
                obj[key] = new
                self.count += n
                hit = True
        self.changed += hit
        return rec

    def summary(self):
        return f"replaced {self.count:,} occurrence{'s' * (self.count != 1)} in {self.changed:,} row{'s' * (self.changed != 1)} " \
               f"(of {self.rows_in:,})"


class Edit(Op):
    name, PARAMS = "edit", ("row", "record")

    def validate(self):
        super().validate()
        self.row = _int(self.params.get("row"), "row", 1)
        rec = self.params.get("record")
        if isinstance(rec, str):
            try:
                rec = json.loads(rec)
            except json.JSONDecodeError as e:
                raise InputError(problems=[Problem("edit record", f"not valid JSON: {e.msg} at column {e.colno}",
                                                   "write the row as a JSON object {...}")])
        if type(rec) is not dict:
            raise InputError(problems=[Problem("edit record", "must be an object {...}", "write the row as a JSON object")])
        self.record = rec
        self.found = False

    def apply(self, no, rec):
        if no == self.row:
            self.found = True
            self.changed += rec != self.record
            return self.record
        return rec

    def summary(self):
        if not self.found:
            return f"row {self.row} not found (the file has {self.rows_in:,} rows); nothing changed"
        return f"row {self.row} " + ("changed" if self.changed else "unchanged")


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
            raise InputError(problems=[Problem("delete rows", "no rows given", "e.g. rows=3,17")])
        self.rows = {_int(r, "rows", 1) for r in rows}

    def apply(self, no, rec):
        return None if no in self.rows else rec

    def summary(self):
        return f"deleted {self.removed:,} row{'s' * (self.removed != 1)}" + \
            (f"; {len(self.rows) - self.removed} row number(s) not found" if len(self.rows) > self.removed else "")


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
            raise InputError(problems=[Problem("redact kinds", f"unknown kind {k!r}", f"use {', '.join(pii.ALL_KINDS)}")
                                       for k in unknown])
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
        return rec

    def summary(self):
        n = sum(self.by_kind.values())
        kinds = ", ".join(f"{c:,} {k}" for k, c in sorted(self.by_kind.items(), key=lambda kv: -kv[1]))
        return f"replaced {n:,} finding{'s' * (n != 1)}" + (f" ({kinds})" if kinds else "") + \
            f" in {self.changed:,} row{'s' * (self.changed != 1)} (of {self.rows_in:,})"


class Split(Op):
    """Runs after the others, on their finished output (it needs the row count)."""
    name, PARAMS = "split", ("val_fraction", "seed")

    def validate(self):
        super().validate()
        self.fraction = _float(self.params.get("val_fraction", 0.1), "val_fraction", 0.0, 0.9)
        self.seed = _int(self.params.get("seed", 42), "seed", 0)
        self.n_train = self.n_val = self.leaks = 0

    def summary(self):
        text = f"split {self.n_train + self.n_val:,} rows into {self.n_train:,} for training and {self.n_val:,} for validation"
        if self.leaks:
            text += f"; {self.leaks:,} validation row(s) also appear in training (run dedupe near=true first to avoid a leaky split)"
        return text

    def touched(self):
        return self.n_val


OPS = {cls.name: cls for cls in (Dedupe, DropEmpty, DropInvalid, Trim, MergeTurns, FilterLong, TruncateLong, Replace, Edit,
                                 Delete, Redact, Split)}


def _bool(v, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).strip().lower() in ("1", "true", "yes", "on"):
        return True
    if str(v).strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise InputError(problems=[Problem(name, f"{v!r} is not true or false", "use true or false")])


def _int(v, name: str, minimum: int) -> int:
    try:
        n = int(str(v).strip())
    except (TypeError, ValueError):
        raise InputError(problems=[Problem(name, f"{v!r} is not a whole number", f"give a number of {minimum} or more")]) from None
    if n < minimum:
        raise InputError(problems=[Problem(name, f"{n} is too small", f"give a number of {minimum} or more")])
    return n


def _float(v, name: str, lo: float, hi: float) -> float:
    try:
        x = float(str(v).strip())
    except (TypeError, ValueError):
        raise InputError(problems=[Problem(name, f"{v!r} is not a number", f"give a number between {lo} and {hi}")]) from None
    if not lo < x < hi:
        raise InputError(problems=[Problem(name, f"{x} is out of range", f"give a number between {lo} and {hi}")])
    return x
