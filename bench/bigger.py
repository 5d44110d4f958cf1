"""Issue 20 on one GPU in one call: memory plan, lowest memory, long context, real data, restarts.

    python3 bench/bigger.py --model /tmp/llama-8b --work $OUT/bigger --out $OUT/bigger.json --deadline 520
    (bench/run_bigger.sh builds the model and sets the environment; bash bench/prepare.sh first)

Rows, in this order (the most telling first; a row is skipped, and said so, when the deadline
would cut it; every row is in its own try/except and the files are rewritten after each):
  restart 1   Danlu, memory plan "auto", mb 4 x 2048, compile caches and kept bytecode emptied first:
              seconds from `python app.py train` (what Start runs) to the first loss point; the same
              run, 3 warm-up + 10 timed steps, is the "memory-plan" row when unsloth-mb4 runs too
  restart 2   the same config again (caches now warm), 3 steps: seconds to the first loss point
  lowest-memory  Danlu, memory_plan=lowest (every layer recomputed, inputs offloaded: today's behaviour)
  unsloth mb 4 x 2048 (the peer harness): the reference of both mb-4 rows (one run, two rows)
  long-16k    Danlu lowest and Unsloth, mb 1 x 16,384
  real-data   Danlu (auto plan, packing) and Unsloth on the same rows and steps (bench/peer_packed.py):
              log-normal lengths, median 300 tokens (bench/bigger_data.py)
  long-32k    Danlu lowest and Unsloth, mb 1 x 32,768
  baseline    HF Trainer + PEFT + bnb mb 4 (the peer harness), only if time is left
  70b         (only when asked: --modes 70b --model-70b DIR) the 70B shape from a pre-quantized nf4
              checkpoint (bench/make_nf4_model.py): Danlu (memory plan auto) at mb 1 and 2, Unsloth
              at mb 1 and 2 (one load), 2 warm-up + 4 timed steps each
  70b-lowest  (only when asked, like 70b) the same with Danlu at memory_plan=lowest; details only
  fit         (only when asked; fit-24 is the same) what fits in --fit-cap GiB (24): the --fit-runs
              (default Danlu lowest and Unsloth at 64k tokens per row; stack@tokens@GiB sets a run's
              own cap), mb 1, each process capped at that much of the card (DANLU_GPU_MEMORY_CAP_GIB;
              the peer through bench/gpu_cap/), 1 warm-up + 1 timed step; bigger-details.json's
              "fit_<GiB>gib"; a longer row is not tried where a shorter one did not fit
FSDP rows are not run here: they need two GPUs.

Output: --out (bench/results/bigger.json's pinned format: {"card", "rows": [{"mode", "stack",
"micro_batch", "seq", "gpus", "tokens_per_s", "peak_gib"}]}, restart rows with "run" and
"seconds_to_first_loss" instead of tokens_per_s) and beside it bigger-details.json (every run's
record: settings, memory plan, losses, errors, the data's lengths).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
MODES = ("restart", "lowest-memory", "unsloth-mb4", "long-16k", "real-data", "long-32k", "baseline")
COST_S = {"restart": 150, "lowest-memory": 75, "unsloth-mb4": 90, "long-16k": 170, "real-data": 160,
          "long-32k": 220, "baseline": 80, "70b": 300, "70b-lowest": 300, "fit": 220, "fit-24": 220}  # a guess of each group's wall time, to skip what cannot finish


class Bench:
    def __init__(self, args):
        self.args, self.t0 = args, time.time()
        self.work = Path(args.work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict] = []
        self.details: dict = dict(runs=[], skipped=[], errors=[], started=time.strftime("%Y-%m-%d %H:%M:%S"))
        self.card = card()
        self.earlier = earlier_rows(args.merge, self.card)

    def left(self) -> float:
        return self.args.deadline - (time.time() - self.t0)

    def row(self, mode: str, stack: str, rec: dict, **extra) -> None:
        """One pinned row from a run's record (only when it measured what the row needs)."""
        if rec.get("status") != "ok" and "seconds_to_first_loss" not in extra:
            return
        r = dict(mode=mode, stack=stack, micro_batch=rec["micro_batch"], seq=rec["seq"], gpus=rec.get("gpus", 1))
        if "seconds_to_first_loss" in extra:
            r.update(run=extra["run"], seconds_to_first_loss=extra["seconds_to_first_loss"])
        else:
            r["tokens_per_s"] = rec["tokens_per_s"]
        r["peak_gib"] = rec.get("peak_gib")
        self.rows.append(r)
        self.save()

    def save(self) -> None:
        out = Path(self.args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        mine = {(r["mode"], r["stack"], r.get("run")) for r in self.rows}
        kept = [r for r in self.earlier if (r["mode"], r["stack"], r.get("run")) not in mine]
        out.write_text(json.dumps(dict(card=self.card, rows=kept + self.rows), indent=2) + "\n")
        self.details.update(card=self.card, elapsed_s=round(time.time() - self.t0, 1))
        out.with_name("bigger-details.json").write_text(json.dumps(self.details, indent=2, default=str) + "\n")

    def log(self, *words) -> None:
        print(f"[+{time.time() - self.t0:5.0f}s]", *words, flush=True)


def card() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30).stdout.strip().splitlines()
        return out[0] if out else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def earlier_rows(path: str | None, card_now: str) -> list[dict]:
    """Rows of an earlier call on the same kind of card, kept unless this call measures them again
    (each comparison's rows always come from one call: a group runs both stacks)."""
    if not path or not Path(path).is_file():
        return []
    try:
        old = json.loads(Path(path).read_text())
    except ValueError:
        return []
    return list(old.get("rows", [])) if old.get("card") == card_now else []


def last_record(path: Path) -> dict:
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1]) if lines else dict(status="error", error="no record written")


def run_logged(b: Bench, name: str, argv: list[str], timeout: float, env: dict | None = None) -> None:
    log = b.work / f"log_{name}.txt"
    b.log(f"{name} (timeout {timeout:.0f}s)")
    with open(log, "w") as f:
        try:
            subprocess.run(argv, cwd=str(REPO), stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                           env=dict(os.environ, **(env or {})))
        except subprocess.TimeoutExpired:
            f.write(f"\n[bigger] killed after {timeout:.0f} s\n")
    tail = [ln for ln in log.read_text(errors="replace").splitlines() if "RESULT" in ln][-1:]
    b.log("  " + (tail[0][:300] if tail else "no result; log tail: " + " | ".join(log.read_text(errors="replace")
                                                                                    .splitlines()[-4:])[:400]))


def danlu(b: Bench, name: str, mb: int, seq: int, sets=(), data=None, warmup=3, steps=10, cap=240,
          model: str | None = None, env: dict | None = None) -> dict:
    """One run of Danlu's recipe through `app.py train` (bench/danlu_run.py); its record."""
    if b.args.smoke:  # CPU check of the script itself (tests/bench/test_bigger_cpu.py): tiny shapes
        seq, warmup, steps = max(64, seq // 32), 1, 2
    out = b.work / f"danlu-{name}.jsonl"
    # the run's own limit leaves danlu_run the time to cancel the job (up to 60 s) and write its record
    # (steps done, peak), which the outer kill below would lose
    inner = int(max(30, min(cap, b.left() - 100)))
    argv = [sys.executable, str(BENCH / "danlu_run.py"), "--model", model or b.args.model, "--mb", str(mb), "--seq", str(seq),
            "--warmup", str(warmup), "--steps", str(steps), "--tag", name, "--out", str(out), "--home", str(b.work / "home"),
            "--timeout", str(inner)]
    for s in sets:
        argv += ["--set", s]
    if data:
        argv += ["--data", str(data)]
    run_logged(b, f"danlu-{name}", argv, timeout=inner + 90, env=env)
    rec = last_record(out)
    b.details["runs"].append(dict(rec, name=f"danlu-{name}"))
    return rec


def harness(b: Bench, name: str, mb: int, seq: int, impl: str, warmup=3, steps=10, cap=200) -> dict:
    """The peer harness (baseline or Unsloth), one process, one micro-batch size; its record."""
    return harness_runs(b, name, [mb], seq, impl, warmup, steps, cap)[0]


def harness_runs(b: Bench, name: str, mbs: list[int], seq: int, impl: str, warmup=3, steps=10, cap=200,
                 model: str | None = None, env: dict | None = None) -> list[dict]:
    """The peer harness, one process (one model load), one run per micro-batch size; their records
    (the harness stops at the first that fails, so a missing one is reported as not run)."""
    why = peer_missing(b, impl)
    recs = {} if why else run_harness(b, name, mbs, seq, impl, warmup, steps, cap, model, env)
    out = []
    for mb in mbs:
        rec = recs.get(mb) or dict(status="skipped" if why else "error",
                                   error=why or "not run (killed, or an earlier micro-batch failed)")
        rec.update(micro_batch=mb, seq=seq, gpus=rec.get("world", 1), peak_gib=rec.get("peak_alloc_gib"))
        if model:  # the 8b parameter count and MFU are wrong for another shape: not reported
            for k in ("n_params", "mfu_6N", "size"):
                rec.pop(k, None)
        b.details["runs"].append(dict(rec, name=name if len(mbs) == 1 else f"{name}-mb{mb}"))
        out.append(rec)
    return out


def peer_missing(b: Bench, impl: str) -> str:
    """Why the peer harness cannot run here ('' when it can)."""
    if b.args.smoke:
        return "smoke run on a CPU: the peer harness needs a GPU"
    if not (REPO / ".bench-baseline" / "qlora_bench.py").exists():
        return "no .bench-baseline (run bash bench/prepare.sh)"
    if impl == "unsloth" and not (REPO / ".site_uns").is_dir():
        return "no .site_uns (run bash bench/prepare.sh)"
    return ""


def run_harness(b: Bench, name: str, mbs: list[int], seq: int, impl: str, warmup: int, steps: int, cap: float,
                model: str | None, extra_env: dict | None = None) -> dict:
    """{micro-batch: record} of one harness process."""
    env = dict(extra_env or {}, OUT=str(b.work / name))
    if impl == "unsloth":
        env["PYTHONPATH"] = f"{REPO / '.site'}:{REPO / '.site_uns'}"
    if env.get("DANLU_GPU_MEMORY_CAP_GIB"):  # the same cap as Danlu's ranks get (bench/gpu_cap/sitecustomize.py)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(BENCH / "gpu_cap"), env.get("PYTHONPATH")) if p)
    (b.work / name).mkdir(exist_ok=True)
    # --size only feeds the harness's parameter count and MFU, which it knows for 8b and 1b alone
    argv = [sys.executable, str(REPO / ".bench-baseline" / "qlora_bench.py"), "--tag", name, "--model",
            model or b.args.model, "--size", "8b", "--bs", ",".join(map(str, mbs)), "--seq", str(seq),
            "--warmup", str(warmup), "--steps", str(steps)] + (["--impl", impl] if impl != "trainer" else [])
    run_logged(b, name, argv, timeout=max(40, min(cap, b.left() - 10)), env=env)
    res = b.work / name / "results.jsonl"
    return {r.get("bs"): r for r in map(json.loads, res.read_text().splitlines() if res.exists() else [])}


# --- the groups of rows ---------------------------------------------------------------------
def restart_and_plan(b: Bench) -> None:
    for cache in ("compile", "bytecode"):  # run 1 starts cold: no compiled graphs, no kept bytecode
        shutil.rmtree(b.work / "home" / "cache" / cache, ignore_errors=True)
    first = danlu(b, "plan", 4, 2048, warmup=3, steps=10, cap=300)
    if "unsloth-mb4" in b.args.modes.split(","):  # its comparison row comes from this call too
        b.row("memory-plan", "danlu", first)
    if first.get("seconds_to_first_loss") is not None:
        b.row("restart", "danlu", first, run=1, seconds_to_first_loss=first["seconds_to_first_loss"])
    second = danlu(b, "plan-again", 4, 2048, warmup=1, steps=2, cap=150)
    if second.get("seconds_to_first_loss") is not None:
        b.row("restart", "danlu", second, run=2, seconds_to_first_loss=second["seconds_to_first_loss"])


def lowest(b: Bench) -> None:
    b.row("lowest-memory", "danlu", danlu(b, "lowest", 4, 2048, sets=["memory_plan=lowest"]))


def unsloth_mb4(b: Bench) -> None:
    rec = harness(b, "unsloth-mb4", 4, 2048, "unsloth")
    b.row("memory-plan", "unsloth", rec)   # Unsloth has one way to spend memory: its one run is the
    b.row("lowest-memory", "unsloth", rec)  # reference of both Danlu rows (bigger-details.json says so)


def long_context(b: Bench, seq: int) -> None:
    mode = f"long-{seq // 1024}k"
    b.row(mode, "danlu", danlu(b, mode, 1, seq, sets=["memory_plan=lowest"], warmup=2, steps=5, cap=200))
    b.row(mode, "unsloth", harness(b, f"unsloth-{mode}", 1, seq, "unsloth", warmup=2, steps=5, cap=200))


def real_data(b: Bench) -> None:
    from bigger_data import make_rows
    data = b.work / "real-data.jsonl"
    b.details["real_data"] = make_rows(data, tokens=int(1.2 * 13 * 4 * 2048 / (32 if b.args.smoke else 1)))
    b.row("real-data", "danlu", danlu(b, "real-data", 4, 2048, data=data))
    out = b.work / "unsloth-real-data.jsonl"
    env = dict(PYTHONPATH=f"{REPO / '.site'}:{REPO / '.site_uns'}")
    argv = [sys.executable, str(BENCH / "peer_packed.py"), "--model", b.args.model, "--data", str(data), "--mb", "4",
            "--seq", "2048", "--warmup", "3", "--steps", "10", "--out", str(out)]
    if (REPO / ".site_uns").is_dir():
        run_logged(b, "unsloth-real-data", argv, timeout=max(40, min(200, b.left() - 10)), env=env)
        rec = last_record(out)
        b.details["runs"].append(dict(rec, name="unsloth-real-data"))
        b.row("real-data", "unsloth", rec)


def baseline(b: Bench) -> None:
    rec = harness(b, "baseline-mb4", 4, 2048, "trainer")
    b.row("memory-plan", "baseline", rec)
    b.row("lowest-memory", "baseline", rec)


def big70(b: Bench) -> None:
    """70B on one card: Danlu at mb 1, Unsloth at mb 1 and 2 (one load of 40 GB), Danlu at mb 2."""
    model = b.args.model_70b
    if not model or not (Path(model) / "config.json").is_file():
        b.details["errors"].append(dict(group="70b", error=f"no checkpoint at --model-70b {model!r} (bench/make_nf4_model.py)"))
        return
    b.row("70b", "danlu", danlu(b, "70b-mb1", 1, 2048, warmup=2, steps=4, cap=200, model=model))
    for rec in harness_runs(b, "unsloth-70b", [1, 2], 2048, "unsloth", warmup=2, steps=4, cap=220, model=model):
        b.row("70b", "unsloth", rec)
    b.row("70b", "danlu", danlu(b, "70b-mb2", 2, 2048, warmup=2, steps=4, cap=200, model=model))


def big70_lowest(b: Bench) -> None:
    """70B at lowest memory: Danlu (memory_plan=lowest) at mb 1 and 2 and Unsloth at mb 1 and 2 in
    this call. Details only (bigger-details.json's "70b_lowest"): the pinned "70b" rows are the
    auto plan's, and a comparison's rows come from one call."""
    model = b.args.model_70b
    if not model or not (Path(model) / "config.json").is_file():
        b.details["errors"].append(dict(group="70b-lowest", error=f"no checkpoint at --model-70b {model!r}"))
        return
    rows = b.details.setdefault("70b_lowest", [])
    for mb in (1, 2):
        rec = danlu(b, f"70b-lowest-mb{mb}", mb, 2048, sets=["memory_plan=lowest"], warmup=2, steps=4, cap=200, model=model)
        rows.append(dict(stack="danlu", micro_batch=mb, tokens_per_s=rec.get("tokens_per_s"), peak_gib=rec.get("peak_gib"),
                         status=rec.get("status")))
        b.save()
    for rec in harness_runs(b, "unsloth-70b", [1, 2], 2048, "unsloth", warmup=2, steps=4, cap=220, model=model):
        rows.append(dict(stack="unsloth", micro_batch=rec["micro_batch"], tokens_per_s=rec.get("tokens_per_s"),
                         peak_gib=rec.get("peak_gib"), status=rec.get("status")))


def fit(b: Bench) -> None:
    """What fits in a capped GPU: each of --fit-runs (stack@tokens per row[@GiB], in order; the cap
    --fit-cap, 24, unless the run names its own), mb 1, 1 warm-up + 1 timed step, the process capped
    at that much of the card (Danlu at lowest memory). Details only (bigger-details.json's
    "fit_<cap>gib"): not a pinned row."""
    for item in b.args.fit_runs.split(","):
        stack, seq, cap_gib = (item.strip().split("@") + [""])[:3]
        seq, cap_gib = int(seq), float(cap_gib or b.args.fit_cap)
        fits = b.details.setdefault(f"fit_{cap_gib:g}gib", [])
        shorter_failed = [f["seq"] for f in fits if f["stack"] == stack and f["fits"] is False and f["seq"] <= seq]
        if shorter_failed:  # a longer row cannot fit where a shorter one did not: the time goes to the next run
            fits.append(dict(stack=stack, seq=seq, cap_gib=cap_gib, fits=False, peak_gib=None, tokens_per_s=None,
                             error=f"not run: {min(shorter_failed)} tokens per row did not fit"))
            continue
        name, cap = f"fit{cap_gib:g}-{seq // 1024}k", dict(DANLU_GPU_MEMORY_CAP_GIB=f"{cap_gib:g}")
        limit = int(240 * max(1.0, seq / 65536) ** 1.5)  # a step's attention grows with the square of the row
        if stack == "danlu":
            rec = danlu(b, name, 1, seq, sets=["memory_plan=lowest"], warmup=1, steps=1, cap=limit, env=cap)
        else:
            rec = harness_runs(b, f"{stack}-{name}", [1], seq, stack, warmup=1, steps=1, cap=limit, env=cap)[0]
        fits.append(fit_record(stack, seq, cap_gib, rec))


def fit_record(stack: str, seq: int, cap_gib: float, rec: dict) -> dict:
    """fits: True (it trained: the timed step, or, cut by the deadline, at least its first step within
    the cap, `steps_done` says), False (out of memory, at any step), None (not known: cut before a
    step ended, skipped)."""
    oom = rec.get("status") in ("OOM", "cuda_oom") or "out of memory" in str(rec.get("error", "")).lower()
    done = len(rec.get("losses") or [])
    fits = True if rec.get("tokens_per_s") is not None else (False if oom else (True if done else None))
    return dict(stack=stack, seq=seq, cap_gib=cap_gib, fits=fits, steps_done=done, peak_gib=rec.get("peak_gib"),
                tokens_per_s=rec.get("tokens_per_s"), error=rec.get("error"))


GROUPS = {"restart": restart_and_plan, "lowest-memory": lowest, "unsloth-mb4": unsloth_mb4,
          "long-16k": lambda b: long_context(b, 16384), "real-data": real_data,
          "long-32k": lambda b: long_context(b, 32768), "baseline": baseline, "70b": big70,
          "70b-lowest": big70_lowest, "fit": fit, "fit-24": fit}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="/tmp/llama-8b")
    ap.add_argument("--work", required=True, help="logs, data and Danlu's workspace for this call")
    ap.add_argument("--out", required=True, help="the pinned results file (bigger-details.json goes beside it)")
    ap.add_argument("--deadline", type=float, default=520, help="seconds this script may take")
    ap.add_argument("--modes", default=",".join(MODES), help=f"groups to run, in order: {','.join(MODES)}")
    ap.add_argument("--model-70b", help="the 70B pre-quantized checkpoint for the 70b group (bench/make_nf4_model.py)")
    ap.add_argument("--fit-cap", type=float, default=24, help="the fit group's GiB per process")
    ap.add_argument("--fit-runs", default="danlu@65536,unsloth@65536",
                    help="the fit group's runs, in order: stack@tokens per row[@GiB] (stack: danlu, unsloth; GiB: --fit-cap)")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes, to check this script on a CPU")
    ap.add_argument("--merge", help="an earlier call's bigger.json: its rows of other groups are kept (same card only)")
    args = ap.parse_args(argv)
    b = Bench(args)
    b.log(f"card: {b.card}; deadline {args.deadline:.0f}s")
    for name in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if name not in GROUPS:
            b.details["errors"].append(f"unknown group {name}")
            continue
        if b.left() < COST_S[name] * 0.6:
            b.details["skipped"].append(dict(group=name, left_s=round(b.left()), needs_s=COST_S[name]))
            b.log(f"SKIP {name}: {b.left():.0f}s left, it needs about {COST_S[name]}s")
            continue
        try:
            GROUPS[name](b)
        except Exception as e:  # one group's failure never costs the others
            import traceback
            b.details["errors"].append(dict(group=name, error=f"{type(e).__name__}: {e}", trace=traceback.format_exc()[-2000:]))
            b.log(f"ERROR in {name}: {type(e).__name__}: {e}")
        b.save()
    b.save()
    for r in b.rows:
        b.log(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
