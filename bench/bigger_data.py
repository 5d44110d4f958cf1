"""The real-data rows of bench/bigger.py, and the steps Danlu's recipe makes of them.

    stats = make_rows(path, tokens=120_000)           # {"rows", "median", "p90", "p99", "max", "over_2048", ...}
    steps = danlu_steps(model_dir, path, mb=4, seq=2048, n=13)   # [{"ids", "labels", "pos", "tokens"}, ...]

Length distribution (synthetic, stated with every result): token lengths drawn from a log-normal
with median 300 and sigma 1.0 (mean about 500, 90th percentile about 1,080, about 2.7% of rows
longer than 2,048 tokens), clipped to 16..16,384: most rows a few hundred tokens, a long tail, the
shape of chat and instruction data. Each row is that many random words of the benchmark model's
word-level tokenizer (one word, one token) in the plain-text format; the recipe splits a row
longer than max_seq_length into several training sequences, as it does for any document.

danlu_steps uses the recipe's own functions (load_examples, split, encode_all, pack,
epoch_batches with seed 0, val_fraction 0), so a peer trained on them sees, step for step, the real
tokens Danlu's recipe trains on. No torch.cuda here: tests/bench/test_bigger_cpu.py runs it on CPU.
"""
from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
MEDIAN, SIGMA, LO, HI = 300, 1.0, 16, 16384


def lengths(n: int, seed: int = 0) -> list[int]:
    rng = random.Random(seed)
    return [max(LO, min(HI, int(round(rng.lognormvariate(math.log(MEDIAN), SIGMA))))) for _ in range(n)]


def make_rows(path: Path, tokens: int, seed: int = 0) -> dict:
    """Rows until their lengths add up to `tokens`; returns the lengths' summary."""
    rng = random.Random(seed + 1)
    out: list[int] = []
    i = 0
    while sum(out) < tokens:
        out += lengths(16, seed + i)
        i += 1
    tmp = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        for n in out:
            f.write(json.dumps({"text": " ".join(f"w{rng.randrange(4, 1000)}" for _ in range(n - 1))}) + "\n")
    os.replace(tmp, path)
    s = sorted(out)
    return dict(rows=len(s), tokens=sum(s), median=s[len(s) // 2], p90=s[int(len(s) * 0.9)], p99=s[int(len(s) * 0.99)],
                max=s[-1], over_2048=sum(n > 2048 for n in s), distribution=f"log-normal, median {MEDIAN}, sigma {SIGMA}, "
                f"clipped to {LO}..{HI} tokens")


def danlu_steps(model_dir: str, data: str, mb: int, seq: int, n: int, seed: int = 0) -> list[dict]:
    """The recipe's first `n` optimizer steps (one micro-batch each), each joined into one row."""
    from core.config import TrainConfig
    from core.data import load_examples
    from core.engine.common import load_tokenizer
    from core.engine.sft_data import IGNORE, encode_all, epoch_batches, pack, split
    tok = load_tokenizer(model_dir, TrainConfig(base_model=model_dir, dataset=str(data)), local=True)
    train_ex, _ = split(load_examples(data, "text").examples, 0.0, seed)
    enc, _ = encode_all(tok, train_ex, seq, False)
    steps = []
    for batch in epoch_batches(pack(enc, seq, seed), mb, 1, 0, seed, 0)[:n]:
        ids = [t for s in batch for t in s.input_ids]
        labels = [t for s in batch for t in s.labels]
        steps.append(dict(ids=ids, labels=labels, pos=[t for s in batch for t in s.position_ids], tokens=len(ids),
                          targets=sum(1 for t in labels[1:] if t != IGNORE)))
    return steps
