"""Cleaning operations for people who do not program: each one streams the records of a file into
a new JSONL file and says exactly what it changed ("removed 12 duplicate rows"). Nothing is
dropped or changed without being counted.

    results = run_ops("in.csv", [("dedupe", {}), ("trim", {})], "out.jsonl")
    results[0]["summary"]   # "removed 3 duplicate rows (of 120)"

Records keep the user's own column names, so a column mapping keeps working on the output.
The operations (OPS) and their parameters:

    dedupe          near=false          remove exact duplicate rows; near=true: same text after
                                        lower-casing and removing punctuation and extra spaces
    drop-empty                          drop rows with missing, empty or whitespace-only text
    drop-invalid                        drop every row with a problem (unreadable lines too), counted by type
    trim                                strip spaces and blank lines around every text
    merge-turns                         merge consecutive turns of the same role into one (joined by a blank line)
    filter-long     max_seq_length      drop rows longer than max_seq_length tokens (needs a model)
    truncate-long   max_seq_length      shorten the last answer so the row fits (needs a model);
                                        rows whose question alone is too long are dropped and counted
    replace         find, with (or replacement), regex=false, ignore_case=false, role=all
                                        find and replace in every text (role: only turns of that role)
    edit            row, record         replace row number `row` (1-based) with `record` (JSON object)
    delete          rows                delete rows by number, e.g. rows=3,17
    split           val_fraction=0.1, seed=42
                                        hold out a validation file (last operation only)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path

from core.data.check import resolve_format
from core.data.formats import FORMAT_NAMES, Schema
from core.data.issues import TITLES, WARNING_CODES, Collector
from core.data.readers import ReadStats, read_records
from core.data.sniff import sniff
from core.errors import InputError, Problem

READ_CODES = ("bad_json", "nan", "encoding", "line_too_long", "ragged", "read_error", "duplicate_key", "header")


def op_names() -> list[str]:
    return list(OPS)


# --- where the text of a record is --------------------------------------------------------------
def text_slots(rec, fmt: str, column_map: dict, role: str = "all"):
    """(container, key, role) for every text value of a record, in its own column names."""
    if type(rec) is not dict:
        return
    c = lambda n: column_map.get(n, n)  # noqa: E731
    if fmt in ("messages", "sharegpt"):
        turns = rec.get(c("messages" if fmt == "messages" else "conversations"))
        if type(turns) is not list:
            return
        for t in turns:
            if type(t) is not dict:
                continue
            key = "value" if "value" in t or "from" in t else "content"
            r = _role(t)
            if type(t.get(key)) is str and role in ("all", r):
                yield t, key, r
        return
    names = {"alpaca": ("system", "instruction", "input", "output"), "prompt_completion": ("prompt", "completion"),
             "text": ("text",)}[fmt]
    roles = {"system": "system", "instruction": "user", "input": "user", "output": "assistant", "prompt": "user",
             "completion": "assistant", "text": "assistant"}
    for n in names:
        if type(rec.get(c(n))) is str and role in ("all", roles[n]):
            yield rec, c(n), roles[n]


def _role(turn: dict) -> str | None:
    from core.data.formats import SHAREGPT_ROLES
    if "from" in turn:
        return SHAREGPT_ROLES.get(str(turn["from"]).lower())
    return turn.get("role")


def answer_slot(rec, fmt: str, column_map: dict):
    """The last answer of a record (what truncate-long shortens)."""
    slots = [s for s in text_slots(rec, fmt, column_map) if s[2] == "assistant"]
    return slots[-1] if slots else None


_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalised(rec, fmt: str, column_map: dict) -> bytes:
    """Text for near-duplicate detection: NFKC, case-folded, punctuation and spacing removed."""
    parts = [v[k] for v, k, _ in text_slots(rec, fmt, column_map)] if type(rec) is dict else [json.dumps(rec)]
    text = "\x1f".join(_PUNCT.sub(" ", unicodedata.normalize("NFKC", p).casefold()).strip() for p in parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def canonical(rec) -> bytes:
    data = json.dumps(rec, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).digest()


# --- the operations ---------------------------------------------------------------------------
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
            if (type(t) is dict and type(prev) is dict and _role(t) is not None and _role(t) == _role(prev)):
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
                                 Delete, Split)}


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


# --- running a list of operations ------------------------------------------------------------
class Ctx:
    def __init__(self, fmt: str, column_map: dict, max_seq_length: int, model: str | None, ws, chat_template: str):
        self.fmt, self.column_map = fmt, column_map
        self.schema = Schema(fmt, column_map)
        self.max_seq_length, self.model, self.ws, self.chat_template = max_seq_length, model, ws, chat_template
        self.unreadable = 0
        self._tok = None

    def tokenizer(self):
        if self._tok is None:
            from core.data.render import load_tokenizer
            self._tok = load_tokenizer(self.model, self.ws, self.chat_template)
        return self._tok


def build_ops(specs: list[tuple[str, dict]], ctx: Ctx) -> list[Op]:
    problems = []
    ops = []
    for i, (name, params) in enumerate(specs):
        cls = OPS.get(name.replace("_", "-"))
        if cls is None:
            problems.append(Problem(name, "is not a cleaning operation", f"use one of {', '.join(OPS)}"))
            continue
        if cls is Split and i != len(specs) - 1:
            problems.append(Problem(name, "must be the last operation", "move split to the end"))
        if cls.needs_tokenizer and not ctx.model:
            problems.append(Problem(name, "needs a model to count tokens", "give the model (--model, e.g. builtin:danlu-tiny)"))
        try:
            ops.append(cls(ctx, **params))
        except InputError as e:
            problems += e.problems
    if problems:
        raise InputError(problems=problems, title="The cleaning operations cannot be run")
    return ops


def run_ops(src: str | Path, specs: list[tuple[str, dict]], out: str | Path, fmt: str = "auto", column_map: dict | None = None,
            *, val_out: str | Path | None = None, model: str | None = None, max_seq_length: int = 1024, ws=None,
            chat_template: str = "auto") -> list[dict]:
    """Apply the operations in order, streaming `src` into `out` (JSONL). Returns one
    {op, summary, removed, changed} per operation. A file with unreadable rows is refused unless
    the first operation is drop-invalid."""
    src, out = Path(src), Path(out)
    sn = sniff(src)
    if sn.refusal is not None:
        raise InputError(problems=[sn.refusal.to_problem(src.name)], title=f"{src.name} cannot be read")
    fmt, cmap = resolve_format(src, fmt, column_map)
    if fmt not in FORMAT_NAMES:
        raise InputError(problems=[Problem(src.name, "cannot tell the dataset format", "choose the format or map the columns")])
    ctx = Ctx(fmt, cmap, max_seq_length, model, ws, chat_template)
    ops = build_ops(specs, ctx)
    split = ops.pop() if ops and isinstance(ops[-1], Split) else None
    col, st = Collector(), ReadStats()
    rows = ((rec_no, value) for _, rec_no, value, _ in read_records(src, sn, col, st, column_map=cmap))
    for op in ops:
        rows = op(rows)
    tmp = _write_jsonl(out.parent, (rec for _, rec in rows))
    try:
        unreadable = sum(n for code, n in col.counts.items() if code in READ_CODES)
        if unreadable and not (ops and isinstance(ops[0], DropInvalid)):
            problems = [i.to_problem(src.name) for code in READ_CODES for i in col.kept.get(code, [])]
            raise InputError(problems=problems[:20], title=f"{src.name} has {unreadable:,} unreadable row(s); fix them, "
                                                          "or run drop-invalid first to remove them")
        ctx.unreadable = unreadable
        if split is not None:
            _split(tmp, out, Path(val_out) if val_out else out.with_suffix(".validation.jsonl"), split, ctx)
            ops.append(split)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return [{"op": op.name, "summary": op.summary(), "removed": op.removed if not isinstance(op, DropInvalid) else op.touched(),
             "changed": op.changed, "touched": op.touched()} for op in ops]


def _write_jsonl(folder: Path, records) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".clean-", suffix=".jsonl.tmp", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, default=str))
            f.write("\n")
    return Path(name)


def _split(tmp: Path, train_out: Path, val_out: Path, op: Split, ctx: Ctx) -> None:
    """The same rule as training's validation split: sort row indices by a seeded hash."""
    with open(tmp, "rb") as f:
        n = sum(1 for _ in f)
    n_val = min(max(1, int(round(n * op.fraction))), n - 1) if n >= 2 else 0
    order = sorted(range(n), key=lambda i: hashlib.sha256(f"{op.seed}:{i}".encode()).digest())
    val_idx = set(order[:n_val])
    train_keys: set = set()
    with open(tmp, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i not in val_idx:
                train_keys.add(normalised(json.loads(line), ctx.fmt, ctx.column_map))
    op.rows_in, op.n_val, op.n_train = n, n_val, n - n_val
    t_tmp = train_out.with_name(f".{train_out.name}.tmp")
    v_tmp = val_out.with_name(f".{val_out.name}.tmp")
    with open(tmp, encoding="utf-8") as f, open(t_tmp, "w", encoding="utf-8", newline="\n") as ft, \
            open(v_tmp, "w", encoding="utf-8", newline="\n") as fv:
        for i, line in enumerate(f):
            if i in val_idx:
                fv.write(line)
                op.leaks += normalised(json.loads(line), ctx.fmt, ctx.column_map) in train_keys
            else:
                ft.write(line)
    os.replace(t_tmp, train_out)
    os.replace(v_tmp, val_out)
