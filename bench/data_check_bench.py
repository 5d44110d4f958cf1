"""Benchmark: schema checks over a generated messages JSONL (not a test; prints a table).

    python bench/data_check_bench.py                  # 1,000,000 rows, serial and parallel
    python bench/data_check_bench.py --rows 200000 --keep

Targets (issue 4): 100,000 rows/s or better on a 2-core machine, peak RSS under 1.5 GB whatever
the file size (streaming). The file mixes single- and multi-turn rows, system prompts, answers
with line breaks, Chinese text, and about 0.1% broken rows (malformed JSON, unknown role, empty
answer, duplicate rows), so the error paths are exercised too. Each run is a fresh process, so
its peak RSS is its own (plus its workers').
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORDS = ("the furnace keeper answers questions about fire pills and furnaces hello how are you fine thank "
         "order shipping refund tea leaf green black oolong water temperature minutes steep cup").split()
HAN = "丹炉火候药材温度时间水茶叶请问如何多少为什么可以不能"


def sentence(rnd: random.Random, lo: int, hi: int) -> str:
    words = rnd.choices(WORDS, k=rnd.randint(lo, hi))
    if rnd.random() < 0.1:
        words.append("".join(rnd.choices(HAN, k=rnd.randint(4, 20))))
    return " ".join(words).capitalize() + "."


def make_row(rnd: random.Random, i: int) -> str:
    msgs = [{"role": "system", "content": "You are a helpful assistant of a tea shop."}] if i % 4 == 0 else []
    for _ in range(rnd.choice((1, 1, 1, 2, 3))):
        msgs.append({"role": "user", "content": sentence(rnd, 5, 30) + f" (#{i})"})
        answer = sentence(rnd, 10, 60)
        if rnd.random() < 0.3:
            answer += "\n\n" + sentence(rnd, 5, 30)
        msgs.append({"role": "assistant", "content": answer})
    r = rnd.random()
    if r < 0.0003:
        return json.dumps({"messages": msgs}, ensure_ascii=False)[:-5]            # malformed JSON
    if r < 0.0006:
        msgs[-1]["role"] = "bot"                                                   # unknown role
    elif r < 0.0009:
        msgs[-1]["content"] = "   "                                                # whitespace-only answer
    return json.dumps({"messages": msgs}, ensure_ascii=False)


def generate(path: Path, rows: int, seed: int = 0) -> None:
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        prev = ""
        for i in range(rows):
            line = prev if (i % 1000 == 999 and prev) else make_row(rnd, i)  # 0.1% duplicates
            f.write(line + "\n")
            prev = line


def _cpu() -> float:
    """CPU seconds of this process and its finished workers: the speed the machine gives when
    other work competes for the cores, which wall time alone hides."""
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime


def child(path: str, workers: int) -> None:
    sys.path.insert(0, str(REPO))
    from core.data.check import check_file
    t = time.perf_counter()
    c0 = _cpu()
    rep = check_file(path, workers=workers)
    dt = time.perf_counter() - t
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # parallel workers are forked by a forkserver, not by us: they report their own usage
    cpu = _cpu() - c0 + sum(w["cpu_s"] for w in rep.workers)
    kids = max([w["max_rss_mb"] for w in rep.workers], default=0)
    print(json.dumps({"seconds": dt, "cpu_seconds": cpu, "rows": rep.rows, "problems": rep.collector.errors(), "ok": rep.ok,
                      "duplicates": rep.duplicates, "rss_main_mb": own, "rss_worker_max_mb": kids,
                      "summary": rep.summary()}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--file", help="check this file instead of generating one")
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--child", nargs=2, metavar=("PATH", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="danlu-bench-"))
    path = Path(args.file) if args.file else tmp / "bench.jsonl"
    if not args.file:
        t = time.perf_counter()
        generate(path, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.1f} s: {path}")
    size = path.stat().st_size
    print(f"file: {size / 2**20:.1f} MB, {size / max(1, args.rows):.0f} bytes/row; CPUs: {os.cpu_count()}; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'mode':<12}{'rows':>11}{'seconds':>9}{'rows/s':>10}{'MB/s':>7}{'CPU s':>7}{'rows/CPU-s':>11}{'problems':>10}"
          f"{'dups':>7}{'RSS main':>10}{'RSS worker':>11}")
    for mode, workers in (("serial", 1), ("parallel", os.cpu_count() or 1)):
        out = subprocess.run([sys.executable, __file__, "--child", str(path), str(workers)], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{mode + ' x' + str(workers):<12}{r['rows']:>11,}{r['seconds']:>9.2f}{r['rows'] / r['seconds']:>10,.0f}"
              f"{size / 2**20 / r['seconds']:>7.0f}{r['cpu_seconds']:>7.1f}{r['rows'] / r['cpu_seconds']:>11,.0f}"
              f"{r['problems']:>10,}{r['duplicates']:>7,}"
              f"{r['rss_main_mb']:>8.0f}MB{r['rss_worker_max_mb']:>9.0f}MB")
    print(f"report: {r['summary']}")
    print(f"load average after: {os.getloadavg()[0]:.2f} (wall-clock rates are only meaningful on a quiet machine)")
    if not args.keep and not args.file:
        path.unlink()
        tmp.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
