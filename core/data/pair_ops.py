"""Cleaning operations for preference pairs (the format `preference`, core/data/pairs.py):

    dedupe-prompt       keep the first pair of each prompt (case and surrounding spaces ignored)
    drop-identical      drop pairs whose chosen and rejected answers are the same text
    swap        row     exchange the chosen and rejected answers of row number `row` (1-based), for a
                        pair that was labelled the wrong way round

Like every operation they stream (row number, record) and count what they did; records keep the
user's own column names (a ShareGPT pair stays ShareGPT, a shared history stays whole).
"""
from __future__ import annotations

from core.data.ops import Op, _int
from core.data.pairs import prompt_key
from core.data.row_ops import missing_row
from core.errors import InputError, Problem
from core.messages import Msg


class _PairOp(Op):
    def validate(self):
        super().validate()
        if self.ctx.fmt != "preference":
            raise InputError(problems=[Problem(self.name, Msg("clean.pairs_only", format=self.ctx.fmt),
                                               Msg("clean.pairs_only.hint"))])


class DedupePrompt(_PairOp):
    name = "dedupe-prompt"

    def validate(self):
        super().validate()
        self.seen: set = set()

    def apply(self, no, rec):
        ex, _ = self.ctx.schema.check(rec, True) if type(rec) is dict else (None, [])
        if ex is None:  # a pair with problems is left for the checker to name
            return rec
        key = prompt_key(ex)
        if key in self.seen:
            return None
        self.seen.add(key)
        return rec

    def summary(self):
        return Msg("clean.dedupe_prompt", n=self.removed, total=self.rows_in)


class DropIdentical(_PairOp):
    name = "drop-identical"

    def apply(self, no, rec):
        if type(rec) is not dict:
            return rec
        _, issues = self.ctx.schema.check(rec, False)
        return None if any(code == "same_answers" for code, *_ in issues) else rec

    def summary(self):
        return Msg("clean.drop_identical", n=self.removed, total=self.rows_in)


class Swap(_PairOp):
    name, PARAMS = "swap", ("row",)

    def validate(self):
        super().validate()
        self.row = _int(self.params.get("row"), "row", 1)
        self.found = False

    def apply(self, no, rec):
        if no != self.row:
            return rec
        self.found = True
        if type(rec) is not dict:
            return rec
        kc, kr = (self.ctx.column_map.get(n, n) for n in ("chosen", "rejected"))
        if kc in rec and kr in rec and rec[kc] != rec[kr]:
            rec[kc], rec[kr] = rec[kr], rec[kc]
            self.changed += 1
        return rec

    def refusal(self):
        return super().refusal() + ([] if self.found else [missing_row("swap row", self.row, self.rows_in)])

    def summary(self):
        return Msg("clean.swapped", row=self.row) if self.changed else Msg("clean.row_unchanged", row=self.row)


def side_tokens(tok, ex: dict, side: str) -> int:
    """Tokens of the prompt with one answer, as the model's chat template renders them."""
    from core.data.pairs import to_messages
    from core.data.render import render
    return len(render(tok, {"messages": to_messages(ex, side)}, False).ids)


def truncate_pair(op, rec):
    """truncate-long on a pair: each answer that makes its side too long is shortened on its own
    (its last turn); the pair is dropped when an answer would be cut to nothing."""
    from core.data.textfields import side_slots
    for side in ("chosen", "rejected"):
        def measure(r, side=side):
            ex, _ = op.ctx.schema.check(r, True)
            return None if ex is None else op.side_length(ex, side)
        n = measure(rec)
        slots = side_slots(rec, op.ctx.column_map, side)
        if n is not None and n > op.max_len and (not slots or not op.cut(rec, slots[-1], n, measure)):
            return None
    op.changed += 1
    return rec


PAIR_OPS = {cls.name: cls for cls in (DedupePrompt, DropIdentical, Swap)}
