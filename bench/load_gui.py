"""Load on the GUI while a job trains: simulated browsers polling the Train tab and clients
uploading datasets, against a real `python app.py` server on 127.0.0.1 (never another address).

    python bench/load_gui.py                          # 50 pollers, 5 uploaders, 2 unloaded + 2 loaded runs
    python bench/load_gui.py --pollers 4 --uploaders 1 --steps 60 --reps 1 --no-check   # smoke (tests/bench/test_load_gui_smoke.py)
    bash bench/load_gpu.sh                            # on a GPU machine: an 8B QLoRA job instead of the demo

What it does:
1. Starts the GUI in a fresh workspace and builds the demo model there.
2. Trains the built-in demo model (`copy-preset demo`, --steps optimizer steps) with the GUI up but
   idle, then again while the load runs, alternating `--reps` times so drift on a shared machine
   hits both sides alike. The job is started from the command line into the GUI's workspace; the
   GUI sees it as any job.
3. Load, for the whole of each loaded run:
   * each poller is one browser tab on the Train tab: its own session and SSE stream, and every
     `--poll-interval` seconds the two events the tab's timer fires (the selected job's status,
     log and plots; and the job table), carrying its own `seen` state as a browser does;
   * each uploader uploads a dataset file (POST /gradio_api/upload) and runs the Dataset tab's check
     on it, then pauses a second, over and over.
4. Reports, as JSON (and --out FILE): requests, errors, latency p50/p95/p99/max per kind, and the
   job's throughput (tokens/s, time-weighted over its metrics.jsonl after the first log) loaded
   versus unloaded. --check (default) exits 1 unless: no errors, p95 < 500 ms for polls and for
   the dataset check, and loaded throughput within 5% of unloaded.

All clients are asyncio tasks in this one process (httpx), so the load generator itself costs
little CPU; on a 2-core machine it still shares the cores with the server and the job, which the
throughput figure includes.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from load_gui_clients import Endpoints, run_load  # noqa: E402 (beside this script, on its path)
LOOPBACK = "127.0.0.1"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
       "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


# ---- the server and the job ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    log = open(home / "gui-server.log", "ab")
    env = dict(os.environ, DANLU_HOME=str(home), **ENV)
    return subprocess.Popen([sys.executable, str(REPO / "app.py"), "--host", LOOPBACK, "--port", str(port)],
                            cwd=str(REPO), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import httpx
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the GUI server exited with {proc.returncode}")
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code == 200 and "danlu-starting-page" not in r.text:  # the app, not the CLI's starting page
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the GUI did not answer within {timeout} s")


def app(home: Path, *args, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, DANLU_HOME=str(home), **ENV)
    return subprocess.run([sys.executable, str(REPO / "app.py"), *map(str, args)], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_config(home: Path, steps: int, source: str | None = None, logging_steps: int = 5) -> Path:
    """The job's config: the demo preset, or `source` (e.g. an 8B QLoRA config on a GPU machine)."""
    cfg = home / "load-job.yaml"
    if source:
        shutil.copyfile(source, cfg)
    else:
        r = app(home, "copy-preset", "demo", cfg)
        if r.returncode != 0:
            raise SystemExit(f"copy-preset failed: {r.stderr}")
    import yaml
    data = yaml.safe_load(cfg.read_text())
    # A fixed number of steps, no mid-run checkpoints or evaluations: the run is pure training steps.
    data.update(max_steps=steps, num_epochs=1000, save_steps=0, eval_steps=0, logging_steps=logging_steps,
                val_fraction=0.0)
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    return cfg


def start_job(home: Path, cfg: Path, name: str) -> str:
    r = app(home, "train", cfg, "--detach", "--name", name)
    if r.returncode != 0:
        raise SystemExit(f"could not start the job: {r.stderr}")
    return r.stdout.strip().splitlines()[-1]


def wait_job(home: Path, job_id: str, timeout: float = 1800) -> dict:
    from core import jobs as J
    store = J.JobStore(home / "jobs.sqlite")
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = store.get(job_id)
        if job.terminal:
            return job.to_dict()
        time.sleep(0.5)
    raise SystemExit(f"job {job_id} did not finish in {timeout} s")


def throughput(run_dir: Path) -> dict:
    """Time-weighted tokens/s over the logged windows after the first (which includes warm-up)."""
    from core.rundir import RunDir, read_jsonl
    recs = [r for r in read_jsonl(RunDir(run_dir).metrics) if r.get("tokens_per_s") is not None]
    tokens = seconds = 0.0
    for prev, cur in zip(recs, recs[1:]):
        dt = cur["time"] - prev["time"]
        tokens += cur["tokens_per_s"] * dt
        seconds += dt
    return {"tokens_per_s": round(tokens / seconds, 1) if seconds else None, "timed_s": round(seconds, 2),
            "steps": recs[-1]["step"] if recs else 0, "logs": len(recs)}


# ---- main --------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    import psutil
    try:
        t = psutil.Process(pid).cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def gpu_names() -> list[str]:
    from core.gpus import detect_gpus
    return [g["name"] for g in detect_gpus()]


def own_cpu_seconds() -> float:
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(home: Path, cfg: Path, label: str, server_pid: int, load=None) -> dict:
    """One training run (optionally under load): its throughput, and the CPU seconds the GUI server
    and this load generator used meanwhile (the machine's cores are shared by all three)."""
    server0, own0, t0 = cpu_seconds(server_pid), own_cpu_seconds(), time.time()
    load_before = os.getloadavg()[0]
    job_id = start_job(home, cfg, label)
    from core import jobs as J
    store = J.JobStore(home / "jobs.sqlite")
    stats = None
    if load is not None:
        stats = load(job_id, lambda: store.get(job_id).terminal)
    job = wait_job(home, job_id)
    if job["state"] != "succeeded":
        raise SystemExit(f"job {job_id} ended {job['state']}: {job.get('message')}")
    out = {"job": job_id, "label": label, **throughput(Path(job["run_dir"])), "wall_s": round(time.time() - t0, 1),
           "server_cpu_s": round(cpu_seconds(server_pid) - server0, 1),
           "load_generator_cpu_s": round(own_cpu_seconds() - own0, 1),
           # the machine's 1-minute load average before and after: other work on a shared machine
           # moves throughput as much as this benchmark's load does
           "loadavg_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    if stats is not None:
        out["load"] = stats.summary()
        requests = sum(v["n"] for v in out["load"].values() if isinstance(v, dict))
        out["requests"] = requests
        out["server_cpu_ms_per_request"] = round(1000 * out["server_cpu_s"] / max(1, requests), 2)
        out["requests_per_s"] = round(requests / max(1e-9, out["wall_s"]), 1)
    return out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pollers", type=int, default=50)
    ap.add_argument("--uploaders", type=int, default=5)
    ap.add_argument("--poll-interval", type=float, default=1.0, help="seconds between a tab's timer ticks (the Train tab's)")
    ap.add_argument("--steps", type=int, default=600, help="optimizer steps per training run")
    ap.add_argument("--reps", type=int, default=2, help="unloaded/loaded pairs")
    ap.add_argument("--config", help="train this config instead of the demo preset (its steps, checkpoints and "
                    "evaluations are overridden as for the demo); e.g. bench/load_gpu.sh's 8B QLoRA job")
    ap.add_argument("--logging-steps", type=int, default=5, help="the job's logging_steps (throughput windows)")
    ap.add_argument("--upload", help="dataset file to upload (default: the demo template's data)")
    ap.add_argument("--home", help="workspace to use (default: a temporary one, removed afterwards)")
    ap.add_argument("--out", help="also write the JSON report here")
    ap.add_argument("--no-check", dest="check", action="store_false", help="report only; never exit 1 on the targets")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    tmp = None
    home = Path(args.home) if args.home else Path(tmp := tempfile.mkdtemp(prefix="danlu-load-"))
    home.mkdir(parents=True, exist_ok=True)
    data_file = Path(args.upload) if args.upload else REPO / "presets" / "templates" / "data" / "demo.jsonl"
    port = free_port()
    base = f"http://{LOOPBACK}:{port}"
    server = start_server(home, port)
    report: dict = {"config": args.config or "demo preset", "pollers": args.pollers, "uploaders": args.uploaders, "poll_interval_s": args.poll_interval,
                    "steps": args.steps, "cpu_count": os.cpu_count(), "gpus": gpu_names(), "runs": []}
    try:
        wait_for(base + "/config", server)
        import httpx
        ep = Endpoints(httpx.get(base + "/config", timeout=30).json())
        cfg = write_config(home, args.steps, args.config, args.logging_steps)

        def load(job_id, done):
            return asyncio.run(run_load(base, ep, job_id, args.pollers, args.uploaders, args.poll_interval,
                                        data_file, done))

        for rep in range(args.reps):
            report["runs"].append(measure(home, cfg, f"unloaded-{rep}", server.pid))
            report["runs"].append(measure(home, cfg, f"loaded-{rep}", server.pid, load))
            print(json.dumps(report["runs"][-2:]), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    failures = summarize(report)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 1 if (failures and args.check) else 0


def summarize(report: dict) -> list[str]:
    """Add the summary over all runs to the report; return the targets missed (none: all met)."""
    unloaded = [r["tokens_per_s"] for r in report["runs"] if r["label"].startswith("unloaded")]
    loaded = [r["tokens_per_s"] for r in report["runs"] if r["label"].startswith("loaded")]
    kinds: dict[str, list] = {}
    errors = 0
    for r in report["runs"]:
        if "load" in r:
            errors += r["load"]["errors"]
            for k, v in r["load"].items():
                if isinstance(v, dict):
                    kinds.setdefault(k, []).append(v)
    report["summary"] = {
        "unloaded_tokens_per_s": round(statistics.mean(unloaded), 1),
        "loaded_tokens_per_s": round(statistics.mean(loaded), 1),
        "throughput_ratio": round(statistics.mean(loaded) / statistics.mean(unloaded), 4),
        "errors": errors,
        "latency": {k: {"n": sum(v["n"] for v in vs), "p95_ms_worst_run": max(v["p95_ms"] for v in vs),
                        "p50_ms_worst_run": max(v["p50_ms"] for v in vs), "max_ms": max(v["max_ms"] for v in vs)}
                    for k, vs in kinds.items()},
    }
    s = report["summary"]
    failures = []
    if s["errors"]:
        failures.append(f"{s['errors']} request errors")
    for k in ("poll", "poll_job", "poll_table", "dataset_check"):
        if k in s["latency"] and s["latency"][k]["p95_ms_worst_run"] >= 500:
            failures.append(f"{k} p95 {s['latency'][k]['p95_ms_worst_run']} ms >= 500 ms")
    if s["throughput_ratio"] < 0.95:
        failures.append(f"loaded throughput is {s['throughput_ratio']:.1%} of unloaded (< 95%)")
    s["targets_met"] = not failures
    s["failures"] = failures
    return failures


if __name__ == "__main__":
    sys.exit(main())
