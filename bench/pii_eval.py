"""Precision and recall of the sensitive-data scan (core/data/pii.py) per kind, on the labelled
sample tests/data/samples/pii_sample.jsonl (each line: a text and the findings a person marked in it).

    python bench/pii_eval.py            # a table: kind, labelled, found, correct, precision, recall
    python bench/pii_eval.py --misses   # and every miss and false alarm, to see what the scan gets wrong
    python bench/pii_eval.py --sample tests/data/samples/pii_heldout.jsonl

pii_sample.jsonl is the sample the rules were tuned on (its numbers flatter them); pii_heldout.jsonl
was written afterwards and measured once, without changing the rules: its numbers are the honest ones.

A finding counts as correct only when its kind and its exact text match a labelled one.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.data.pii import KINDS, scan_text  # noqa: E402

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "samples" / "pii_sample.jsonl"


def evaluate(path: Path = SAMPLE) -> tuple[dict, list]:
    """{kind: {labelled, found, correct, precision, recall}}, [(line, 'miss'|'false alarm', kind, text)]."""
    stats = {k: Counter() for k in KINDS}
    wrong = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        row = json.loads(line)
        want = Counter((k, t) for k, t in row["expect"])
        got = Counter((h.kind, h.text) for h in scan_text(row["text"]))
        for (kind, text), c in want.items():
            stats[kind]["labelled"] += c
            stats[kind]["correct"] += min(c, got.get((kind, text), 0))
            wrong += [(n, "miss", kind, text)] * max(0, c - got.get((kind, text), 0))
        for (kind, text), c in got.items():
            stats[kind]["found"] += c
            wrong += [(n, "false alarm", kind, text)] * max(0, c - want.get((kind, text), 0))
    table = {}
    for k, s in stats.items():
        table[k] = {"labelled": s["labelled"], "found": s["found"], "correct": s["correct"],
                    "precision": s["correct"] / s["found"] if s["found"] else None,
                    "recall": s["correct"] / s["labelled"] if s["labelled"] else None}
    return table, wrong


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--misses", action="store_true", help="list every miss and false alarm")
    ap.add_argument("--sample", type=Path, default=SAMPLE, help="a labelled JSONL file (default: the tuning sample)")
    args = ap.parse_args()
    table, wrong = evaluate(args.sample)
    rows = sum(1 for _ in args.sample.open(encoding="utf-8"))
    print(f"sample: {args.sample.name}, {rows} texts")
    print(f"{'kind':<16}{'labelled':>9}{'found':>7}{'correct':>9}{'precision':>11}{'recall':>8}")
    fmt = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    for k, s in table.items():
        print(f"{k:<16}{s['labelled']:>9}{s['found']:>7}{s['correct']:>9}{fmt(s['precision']):>11}{fmt(s['recall']):>8}")
    if args.misses:
        for n, what, kind, text in wrong:
            print(f"line {n}: {what}: {kind} {text!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
