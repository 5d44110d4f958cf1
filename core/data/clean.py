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
    redact          kinds=all, names=, hits=
                                        replace sensitive data with placeholders ([EMAIL]); kinds from
                                        core/data/pii.py, names: words of your choice, hits: only these findings
    split           val_fraction=0.1, seed=42
                                        hold out a validation file (last operation only)
    dedupe-prompt                       preference pairs: keep the first pair of each prompt
    drop-identical                      preference pairs: drop pairs whose two answers are the same
    swap            row                 preference pairs: exchange chosen and rejected of one row
                                        (core/data/pair_ops.py)
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from core.data.check import resolve_format
from core.data.formats import FORMAT_NAMES, Schema
from core.data.issues import Collector
from core.data.ops import (Dedupe, DropEmpty, DropInvalid, FilterLong, MergeTurns, Op, Replace, Split, Trim,
                           TruncateLong)
from core.data.pair_ops import PAIR_OPS
from core.data.row_ops import Delete, Edit, Redact
from core.data.readers import ReadStats, read_records
from core.data.sniff import sniff
from core.data.textfields import normalised
from core.errors import InputError, Problem
from core.messages import Msg, keep
from core.workspace import temp_file

OPS = {**{cls.name: cls for cls in (Dedupe, DropEmpty, DropInvalid, Trim, MergeTurns, FilterLong, TruncateLong, Replace,
                                    Edit, Delete, Redact, Split)}, **PAIR_OPS}
# Reader problems that make a row unreadable: other operations refuse to run past them.
READ_CODES = ("bad_json", "nan", "big_number", "encoding", "line_too_long", "ragged", "read_error", "duplicate_key", "header")


class Ctx:
    """What every operation may need: the format, mapping, schema, and a tokenizer loaded on first use."""

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
            problems.append(Problem(name, Msg("clean.not_an_op"), Msg("clean.use_ops.hint", ops=", ".join(OPS))))
            continue
        if cls is Split and i != len(specs) - 1:
            problems.append(Problem(name, Msg("clean.split_last"), Msg("clean.split_last.hint")))
        if cls.needs_tokenizer and not ctx.model:
            problems.append(Problem(name, Msg("clean.needs_model"), Msg("clean.needs_model.hint")))
        try:
            ops.append(cls(ctx, **params))
        except InputError as e:
            problems += e.problems
    if problems:
        raise InputError(problems=problems, title=Msg("clean.ops_title"))
    return ops


def run_ops(src: str | Path, specs: list[tuple[str, dict]], out: str | Path, fmt: str = "auto", column_map: dict | None = None,
            *, val_out: str | Path | None = None, model: str | None = None, max_seq_length: int = 1024, ws=None,
            chat_template: str = "auto", display_name: str | None = None, kept: list | None = None) -> list[dict]:
    """Apply the operations in order, streaming `src` into `out` (JSONL). Returns one
    {op, summary, summary_msg, removed, changed} per operation (summary in English, summary_msg its code). A file with unreadable rows is refused unless
    the first operation is drop-invalid. `display_name`: the name the user knows the file by
    (messages name it; a stored version's file name is a random id). `kept`, a list, receives the
    input record number of each output row in order (review marks follow their rows with it)."""
    src, out = Path(src), Path(out)
    name = display_name or src.name
    sn = sniff(src)
    if sn.refusal is not None:
        raise InputError(problems=[sn.refusal.to_problem(name)], title=Msg("clean.cannot_read_title", file=name))
    fmt, cmap = resolve_format(src, fmt, column_map)
    if fmt not in FORMAT_NAMES:
        raise InputError(problems=[Problem(name, Msg("clean.unknown_format"), Msg("clean.unknown_format.hint"))])
    ctx = Ctx(fmt, cmap, max_seq_length, model, ws, chat_template)
    ops = build_ops(specs, ctx)
    split = ops.pop() if ops and isinstance(ops[-1], Split) else None
    col, st = Collector(), ReadStats()
    rows = ((rec_no, value) for _, rec_no, value, _ in read_records(src, sn, col, st, column_map=cmap))
    for op in ops:
        rows = op(rows)
    if kept is not None:
        rows = _noting(rows, kept)
    tmp = _write_jsonl(out, (rec for _, rec in rows))
    try:
        unreadable = sum(n for code, n in col.counts.items() if code in READ_CODES)
        if unreadable and not (ops and isinstance(ops[0], DropInvalid)):
            problems = [i.to_problem(name) for code in READ_CODES for i in col.kept.get(code, [])]
            raise InputError(problems=problems[:20], title=Msg("clean.unreadable_title", file=name, n=unreadable))
        ctx.unreadable = unreadable
        refused = [p for op in ops for p in op.refusal()]
        if refused:
            raise InputError(problems=refused, title=Msg("clean.ops_title"))
        if split is not None:
            _split(tmp, out, Path(val_out) if val_out else out.with_suffix(".validation.jsonl"), split, ctx)
            ops.append(split)
            if kept is not None:
                kept[:] = [no for i, no in enumerate(kept) if i not in split.val_idx]
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return [{"op": op.name, **keep("summary", op.summary()), "removed": op.removed if not isinstance(op, DropInvalid) else op.touched(),
             "changed": op.changed, "touched": op.touched()} for op in ops]


def _noting(rows, kept: list):
    for no, rec in rows:
        kept.append(no)
        yield no, rec


def _write_jsonl(out: Path, records) -> Path:
    """The records into a temporary file beside `out` (its mode when it exists: --force keeps it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = temp_file(out.parent, ".clean-", ".jsonl.tmp", replacing=out)
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
    op.val_idx = val_idx
    train_keys: set = set()
    with open(tmp, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i not in val_idx:
                train_keys.add(normalised(json.loads(line), ctx.fmt, ctx.column_map))
    op.rows_in, op.n_val, op.n_train = n, n_val, n - n_val
    # temporary names of their own, with the mode of the file each replaces (core.workspace.temp_file)
    t_fd, t_tmp = temp_file(train_out.parent, f".{train_out.name}.", ".tmp", replacing=train_out)
    v_fd, v_tmp = temp_file(val_out.parent, f".{val_out.name}.", ".tmp", replacing=val_out)
    with open(tmp, encoding="utf-8") as f, os.fdopen(t_fd, "w", encoding="utf-8", newline="\n") as ft, \
            os.fdopen(v_fd, "w", encoding="utf-8", newline="\n") as fv:
        for i, line in enumerate(f):
            if i in val_idx:
                fv.write(line)
                op.leaks += normalised(json.loads(line), ctx.fmt, ctx.column_map) in train_keys
            else:
                ft.write(line)
    os.replace(t_tmp, train_out)
    os.replace(v_tmp, val_out)
