"""What the Dataset tab shows about a file: rows, format, token lengths against max_seq_length,
how many rows would be cut, and one example as the model sees it with the learned tokens marked.

    info = insight(path, model="builtin:danlu-tiny", max_seq_length=1024, ws=ws)
    info["histogram"]   # {"edges": [0, 64, ...], "counts": [...]}   token lengths of the rows
    info["over_max"]    # rows longer than max_seq_length (training cuts them)
    info["preview"]     # {"segments": [{"text", "trained", "truncated"}], "tokens", "trained_tokens", ...}

With a model, lengths and the preview use its tokenizer and chat template exactly as training
does (core.data.render). Without one, the preview is ChatML text and lengths are estimates
(about 4 characters a token), and say so. Big files are measured on an evenly spaced sample.
"""
from __future__ import annotations

import bisect
import math
from pathlib import Path

from core.data.check import check_file, iter_examples
from core.data.render import (ChatMLText, estimate_tokens, has_target, load_tokenizer, pair_segments, render, segments,
                               text_segments)
from core.messages import Msg, said, verbatim

SAMPLE_ROWS = 20000


def _length(tok, ex: dict, train_on_inputs: bool, max_len: int):
    """(tokens, learned tokens within max_len, exact?) for one example."""
    if "chosen" in ex:  # a pair: each side is the prompt plus one answer; the longer side counts
        from core.data.pairs import to_messages
        sides = [_length(tok, {"messages": to_messages(ex, side)}, False, max_len) for side in ("chosen", "rejected")]
        learned = None if tok is None else min(s[1] for s in sides)
        return max(s[0] for s in sides), learned, sides[0][2]
    if tok is None:
        text = ex["text"] if "text" in ex else ChatMLText().apply_chat_template(ex["messages"])
        return estimate_tokens(text), None, False
    r = render(tok, ex, train_on_inputs)
    if r.is_text:
        return len(r.ids), len(r.ids), True
    return len(r.ids), sum(1 for lab in r.labels[1:max_len] if lab != -100), True


def histogram(values: list[int], max_len: int, bins: int = 20) -> dict:
    """Equal-width bins from 0 to past the longest row (and at least to max_len, so the limit shows)."""
    top = max(max(values, default=0), max_len)
    width = max(1, math.ceil(top * 1.0001 / bins))
    edges = [i * width for i in range(bins + 1)]
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, bisect.bisect_right(edges, v) - 1)] += 1
    return {"edges": edges, "counts": counts}


def insight(path: str | Path, fmt: str = "auto", column_map: dict | None = None, *, model: str | None = None,
            max_seq_length: int = 1024, train_on_inputs: bool = False, ws=None, chat_template: str = "auto",
            preview: int = 0, sample: int = SAMPLE_ROWS, bins: int = 20, display_name: str | None = None,
            report=None) -> dict:
    """`report`: a check_file Report of this file already made (saves a second pass)."""
    path = Path(path)
    rep = report if report is not None else check_file(path, fmt, column_map, display_name=display_name)
    out = {"file": rep.file, "path": str(path), "download": str(path), "ok": rep.ok, "format": rep.format,
           "column_map": rep.column_map, "rows": rep.rows, "usable_rows": rep.usable, "problem_count": rep.collector.errors(),
           "summary": str(rep.summary()), "max_seq_length": max_seq_length, "tokenizer": model, "exact": bool(model),
           "measured_rows": 0, "sampled": False, "lengths": None, "histogram": None, "over_max": 0, "over_max_measured": 0,
           "no_target": 0, "nothing_to_learn": False, "text_chunks": 0, "preview": None, "template_error": None}
    if not rep.format or not rep.usable:
        return out
    tok = load_tokenizer(model, ws, chat_template) if model else None
    stride = max(1, math.ceil(rep.usable / max(1, sample)))
    lengths: list[int] = []
    over = no_target = chunks = 0
    failed = 0
    for i, (line, record, ex) in enumerate(iter_examples(path, rep.format, rep.column_map)):
        try:
            if i == preview:
                out["preview"] = _preview(tok, ex, train_on_inputs, max_seq_length, i, line, record)
            if i % stride:
                continue
            n, learned, exact = _length(tok, ex, train_on_inputs, max_seq_length)
        except Exception as e:  # the model's template refuses the row (e.g. "System role not supported")
            failed += 1
            if failed == 1:
                out["template_error"] = {"line": line, "record": record,
                                         **said(verbatim(str(e)[:300]), Msg("insight.template_row.hint"))}
            continue
        lengths.append(n)
        if "text" in ex:
            chunks += n > max_seq_length
        else:
            over += n > max_seq_length
            no_target += learned == 0
    if not lengths:
        if failed:
            out["template_error"]["count"] = failed
        return out
    ordered = sorted(lengths)
    scale = rep.usable / len(lengths)
    if failed:
        out["template_error"]["count"] = failed
    out.update(measured_rows=len(lengths), sampled=stride > 1, over_max_measured=over, over_max=round(over * scale),
               no_target=round(no_target * scale), text_chunks=round(chunks * scale),
               nothing_to_learn=no_target == len(lengths),  # every row measured keeps no answer: training stops
               lengths={"min": ordered[0], "max": ordered[-1], "mean": round(sum(ordered) / len(ordered), 1),
                        "median": ordered[len(ordered) // 2], "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]},
               histogram=histogram(lengths, max_seq_length, bins))
    return out


def _preview(tok, ex: dict, train_on_inputs: bool, max_len: int, index: int, line, record) -> dict:
    if "chosen" in ex:
        return _pair_preview(tok, ex, max_len, index, line, record)
    if tok is None:
        segs = text_segments(ex)
        return {"index": index, "line": line, "record": record, "segments": segs, "exact": False,
                "tokens": estimate_tokens("".join(s["text"] for s in segs)), "trained_tokens": None, "truncated": False,
                "learns_something": any(s["trained"] for s in segs)}
    r = render(tok, ex, train_on_inputs)
    cut = not r.is_text and len(r.ids) > max_len
    labels = r.labels[:max_len] if cut else r.labels
    return {"index": index, "line": line, "record": record, "segments": segments(r, max_len), "exact": True,
            "tokens": len(r.ids), "trained_tokens": sum(1 for lab in labels if lab != -100), "truncated": cut,
            "learns_something": has_target(labels)}


def _pair_preview(tok, ex: dict, max_len: int, index: int, line, record) -> dict:
    """A pair: `pair` holds the prompt and each answer's segments for the side-by-side view;
    `segments` the prompt with the chosen answer (what a supervised run would learn)."""
    pair = pair_segments(tok, ex, max_len)
    sides = ("chosen", "rejected")
    if tok is not None:
        longest = max(pair["tokens"].values())
    else:
        longest = max(estimate_tokens("".join(s["text"] for s in pair["prompt"] + pair[side])) for side in sides)
    return {"index": index, "line": line, "record": record, "segments": pair["prompt"] + pair["chosen"], "pair": pair,
            "exact": tok is not None, "tokens": longest, "trained_tokens": None, "truncated": tok is not None and longest > max_len,
            "learns_something": all(any(s["trained"] for s in pair[side]) for side in sides)}
