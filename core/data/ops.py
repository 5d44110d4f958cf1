"""The cleaning operations, one class each. Rows flow through as (row number, record); each
operation counts what it removed or changed and says it in `summary()` ("removed 12 duplicate
rows (of 1,000)"). The list and parameters are in core/data/clean.py; the operations on rows the
user picked (edit, delete, redact) are in core/data/row_ops.py, those on preference pairs in
core/data/pair_ops.py.
"""
from __future__ import annotations

import json
import math
import re

from core.config import FIELDS, as_number, quoted
from core.data.issues import WARNING_CODES, title
from core.data.readers import MAX_RECORD_BYTES
from core.data.textfields import answer_slot, canonical, normalised, text_slots, turn_role
from core.errors import InputError, Problem
from core.messages import Msg, sizes_over


class Op:
    """One step. Rows flow through as (row number, record); `summary()` says what happened."""
    needs_tokenizer = False

    def __init__(self, ctx: "Ctx", **params):
        self.ctx = ctx
        self.params = params
        self.rows_in = 0
        self.removed = 0
        self.changed = 0
        self.overlong: list[tuple[int, int]] = []   # (row, bytes) of the rows this step made longer than a row may be
        self.validate()

    def validate(self) -> None:
        unknown = set(self.params) - set(self.PARAMS)
        if unknown:
            raise InputError(problems=[Problem(f"{self.name} {k}", Msg("clean.not_a_param"),
                                               Msg("clean.params.hint", params=", ".join(self.PARAMS) or Msg("clean.none")))
                                       for k in sorted(unknown)])

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

    def refusal(self) -> list[Problem]:
        """What makes this step's whole run wrong once every row went through (a row it names is not
        there, a row it made too long): run_ops then writes nothing."""
        return [Problem(f"{self.name} (row {no})", Msg("read.record_is_mb", **sizes_over(size, MAX_RECORD_BYTES)),
                        Msg("clean.grown_mb.hint")) for no, size in self.overlong[:20]]

    def note_size(self, no, rec) -> None:
        """A step that makes texts longer (replace, redact) checks each row it changed: past the readers'
        limit a version holds a row that every later read finds unreadable, as an edit would (row_ops.Edit)."""
        size = record_bytes(rec)
        if size > MAX_RECORD_BYTES:
            self.overlong.append((no, size))

    def summary(self) -> Msg:
        return Msg("clean.generic", name=self.name, removed=self.removed, changed=self.changed, total=self.rows_in)


def record_bytes(rec) -> int:
    """The row's line in a version JSONL as run_ops writes it (its newline included), in bytes."""
    return len(json.dumps(rec, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")) + 1


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
        return Msg("clean.dedupe_near" if self.near else "clean.dedupe", n=self.removed, total=self.rows_in)


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
        return Msg("clean.drop_empty", n=self.removed, total=self.rows_in)


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
        parts = [Msg("clean.kind_count", n=n, kind=title(c)) for c, n in sorted(self.by_code.items(), key=lambda kv: -kv[1])]
        if unreadable:
            parts.insert(0, Msg("clean.unreadable_count", n=unreadable))
        if parts:
            return Msg("clean.drop_invalid_kinds", n=total, parts=parts, total=self.rows_in + unreadable)
        return Msg("clean.drop_invalid", n=total, total=self.rows_in + unreadable)

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
        return Msg("clean.trim", fields=self.fields, n=self.changed, total=self.rows_in)


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
            return Msg("clean.no_turns", format=self.ctx.fmt)
        return Msg("clean.merge", merged=self.merged, n=self.changed, total=self.rows_in)


class _Long(Op):
    PARAMS = ("max_seq_length",)
    needs_tokenizer = True

    def validate(self):
        super().validate()
        limits = FIELDS["max_seq_length"].metadata  # the training setting's bounds
        self.max_len = _int(self.params.get("max_seq_length", self.ctx.max_seq_length), "max_seq_length", limits["min"], limits["max"])
        self.unmeasured = 0

    def length(self, rec) -> int | None:
        if type(rec) is not dict:
            return None
        ex, _ = self.ctx.schema.check(rec, True)
        if ex is None:
            return None
        from core.data.render import render
        if "chosen" in ex:  # a preference pair: each answer is trained with the prompt; the longer one counts
            return max(self.side_length(ex, side) for side in ("chosen", "rejected"))
        return len(render(self.ctx.tokenizer(), ex, False).ids)

    def side_length(self, ex: dict, side: str) -> int:
        from core.data.pair_ops import side_tokens
        return side_tokens(self.ctx.tokenizer(), ex, side)

    def apply(self, no, rec):
        n = self.length(rec)
        if n is None:
            self.unmeasured += 1
            return rec
        return rec if n <= self.max_len else self.too_long(rec, n)

    def too_long(self, rec, n):
        return None

    def note(self) -> Msg | str:
        return Msg("clean.unmeasured", n=self.unmeasured) if self.unmeasured else ""


class FilterLong(_Long):
    name = "filter-long"

    def summary(self):
        return Msg("clean.filter_long", n=self.removed, limit=self.max_len, total=self.rows_in, note=self.note())


class TruncateLong(_Long):
    name = "truncate-long"

    def too_long(self, rec, n):
        if self.ctx.fmt == "preference":
            from core.data.pair_ops import truncate_pair
            return truncate_pair(self, rec)
        slot = answer_slot(rec, self.ctx.fmt, self.ctx.column_map)
        if slot is None or not self.cut(rec, slot, n, self.length):
            return None
        self.changed += 1
        return rec

    def cut(self, rec, slot, n: int, measure) -> bool:
        """Shorten the text at `slot` until `measure(rec)` fits; False when nothing would be left."""
        obj, key, _ = slot
        answer = obj[key]
        tok = self.ctx.tokenizer()
        offsets = tok(answer, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        keep = len(offsets) - (n - self.max_len)
        for _ in range(12):  # templates add a token or two around the answer: converge in a few steps
            if keep <= 0:
                return False
            obj[key] = answer[:offsets[keep - 1][1]]
            if not obj[key].strip():
                return False
            n2 = measure(rec)
            if n2 is not None and n2 <= self.max_len:
                return True
            keep -= max(1, (n2 or n) - self.max_len)
        return False

    def summary(self):
        return Msg("clean.truncate_long", n=self.changed, limit=self.max_len, dropped=self.removed, total=self.rows_in,
                   note=self.note())


class Replace(Op):
    name, PARAMS = "replace", ("find", "with", "replacement", "regex", "ignore_case", "role")

    def validate(self):
        super().validate()
        find = self.params.get("find")
        if not isinstance(find, str) or not find:
            raise InputError(problems=[Problem("replace find", Msg("clean.nothing_to_find"), Msg("clean.nothing_to_find.hint"))])
        self.repl = str(self.params.get("with", self.params.get("replacement", "")))  # `with` is a Python keyword
        self.role = self.params.get("role", "all")
        if self.role not in ("all", "system", "user", "assistant"):
            raise InputError(problems=[Problem("replace role", Msg("clean.unknown_role", role=repr(self.role)),
                                               Msg("clean.unknown_role.hint"))])
        flags = re.IGNORECASE if _bool(self.params.get("ignore_case", False), "ignore_case") else 0
        try:
            self.pattern = re.compile(find if _bool(self.params.get("regex", False), "regex") else re.escape(find), flags)
        except re.error as e:
            raise InputError(problems=[Problem("replace find", Msg("clean.bad_pattern", error=str(e)), Msg("clean.bad_pattern.hint"))])
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
        if hit and self.repl:
            self.note_size(no, rec)
        return rec

    def summary(self):
        return Msg("clean.replace", count=self.count, n=self.changed, total=self.rows_in)


class Split(Op):
    """Runs after the others, on their finished output (it needs the row count)."""
    name, PARAMS = "split", ("val_fraction", "seed")

    def validate(self):
        super().validate()
        self.fraction = _float(self.params.get("val_fraction", 0.1), "val_fraction", 0.0, 0.9)
        self.seed = _int(self.params.get("seed", 42), "seed", 0)
        self.n_train = self.n_val = self.leaks = 0

    def summary(self):
        counts = dict(total=self.n_train + self.n_val, train=self.n_train, val=self.n_val)
        return Msg("clean.split_leaks", leaks=self.leaks, **counts) if self.leaks else Msg("clean.split", **counts)

    def touched(self):
        return self.n_val


def _bool(v, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if str(v).strip().lower() in ("1", "true", "yes", "on"):
        return True
    if str(v).strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise InputError(problems=[Problem(name, Msg("clean.not_bool", value=repr(v)), Msg("clean.not_bool.hint"))])


def _int(v, name: str, minimum: int, maximum: int | None = None) -> int:
    """A whole-number parameter. One of 5,000 digits is out of its bounds, quoted short, as a setting's is
    (core.config_io): it was 'not a whole number', which it is."""
    n = as_number(v, int)
    if n is None:
        raise InputError(problems=[Problem(name, Msg("clean.not_int", value=repr(v)), Msg("clean.at_least.hint", n=minimum))])
    if n < minimum:
        raise InputError(problems=[Problem(name, Msg("clean.too_small", value=quoted(v)), Msg("clean.at_least.hint", n=minimum))])
    if n == math.inf or (maximum is not None and n > maximum):
        hint = Msg("clean.between.hint", lo=minimum, hi=maximum) if maximum is not None else None
        raise InputError(problems=[Problem(name, Msg("clean.out_of_range", value=quoted(v)), hint)])
    return n


def _float(v, name: str, lo: float, hi: float) -> float:
    x = as_number(v, float)
    if x is None:
        raise InputError(problems=[Problem(name, Msg("clean.not_float", value=repr(v)), Msg("clean.between.hint", lo=lo, hi=hi))])
    if not lo < x < hi:
        raise InputError(problems=[Problem(name, Msg("clean.out_of_range", value=quoted(v)), Msg("clean.between.hint", lo=lo, hi=hi))])
    return x
