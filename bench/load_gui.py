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
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
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


def job_record(home: Path, job_id: str) -> dict:
    r = app(home, "jobs", "show", job_id, "--json")
    return json.loads(r.stdout)


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


# ---- the clients ---------------------------------------------------------------------------------
class Endpoints:
    """fn indices of the events a browser on the Train and Dataset tabs fires, read from /config."""

    def __init__(self, config: dict):
        comps = {c["id"]: c for c in config["components"]}
        deps = config["dependencies"]
        by_api = {d.get("api_name"): d for d in deps}
        self.refresh = by_api.get("refresh_job")
        if not self.refresh:
            raise SystemExit("the GUI has no Train tab refresh_job endpoint")
        # the Train tab's timer: the one refresh_job hangs on (other tabs' timers only run while
        # those tabs have a job in flight)
        timers = {t[0] for t in self.refresh["targets"] if comps.get(t[0], {}).get("type") == "timer"}
        self.ticks = [d for d in deps if any(t[0] in timers and t[1] == "tick" for t in d["targets"])]
        self.check = by_api.get("check_dataset") or by_api.get("import_dataset") or by_api.get("upload_dataset")
        if not self.ticks:
            raise SystemExit("refresh_job is not fired by a timer")
        if not self.check:
            raise SystemExit("the GUI has no dataset check endpoint (check_dataset)")
        self.comps = comps
        self.lang_id = next((c["id"] for c in config["components"]
                             if c.get("props", {}).get("elem_id") == "language"), None)
        self.job_ids = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "train-job"}

    def default(self, cid: int):
        return self.comps[cid].get("props", {}).get("value")


class Stats:
    def __init__(self):
        self.lat: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def add(self, kind: str, seconds: float):
        self.lat.setdefault(kind, []).append(seconds)

    def error(self, kind: str, text: str):
        self.errors.append(f"{kind}: {text[:300]}")

    def summary(self) -> dict:
        out = {}
        for kind, xs in sorted(self.lat.items()):
            xs = sorted(xs)
            q = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else xs * 99
            out[kind] = {"n": len(xs), "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
                         "p99_ms": round(q[98] * 1000, 1), "max_ms": round(xs[-1] * 1000, 1)}
        out["errors"] = len(self.errors)
        out["error_samples"] = self.errors[:10]
        return out


class Session:
    """One browser tab: a session hash, one SSE stream, events joined on the queue."""

    def __init__(self, client, base: str, stats: Stats):
        self.client, self.base, self.stats = client, base, stats
        self.hash = uuid.uuid4().hex[:11]
        self.waiting: dict[str, asyncio.Future] = {}
        self.reader: asyncio.Task | None = None

    async def _read(self):
        """Read the session's stream while events are pending (the server closes it when none are)."""
        while self.waiting:
            try:
                async with self.client.stream("GET", f"{self.base}/gradio_api/queue/data",
                                              params={"session_hash": self.hash}, timeout=None) as r:
                    if r.status_code != 200:
                        self.stats.error("stream", f"HTTP {r.status_code}")
                        await asyncio.sleep(1)
                        continue
                    async for line in r.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        msg = json.loads(line[5:])
                        if msg.get("msg") == "close_stream":
                            break
                        if msg.get("msg") in ("process_completed", "unexpected_error"):
                            fut = self.waiting.pop(msg.get("event_id"), None)
                            if fut is not None and not fut.done():
                                fut.set_result(msg)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.stats.error("stream", f"{type(e).__name__}: {e}")
                await asyncio.sleep(0.2)

    async def call(self, kind: str, dep: dict, data: list, timeout: float = 60) -> dict | None:
        """Fire one event as the page does: through the queue (join + the session's stream), or, for
        an event declared queue=False, one plain POST to /gradio_api/run/predict."""
        t0 = time.perf_counter()
        body = {"data": data, "fn_index": dep["id"], "session_hash": self.hash, "event_data": None,
                "trigger_id": dep["targets"][0][0] if dep["targets"] else None}
        if dep.get("queue") is False:
            try:
                r = await self.client.post(f"{self.base}/gradio_api/run/predict", json=body, timeout=timeout)
            except Exception as e:
                self.stats.error(kind, f"{type(e).__name__}: {e}")
                return None
            if r.status_code != 200:
                self.stats.error(kind, f"HTTP {r.status_code}: {r.text}")
                return None
            self.stats.add(kind, time.perf_counter() - t0)
            return r.json()
        try:
            r = await self.client.post(f"{self.base}/gradio_api/queue/join", json=body, timeout=timeout)
            if r.status_code != 200:
                self.stats.error(kind, f"join HTTP {r.status_code}: {r.text}")
                return None
            eid = r.json()["event_id"]
            fut = asyncio.get_running_loop().create_future()
            self.waiting[eid] = fut  # before the reader check: a reader about to stop sees it and reads on
            if self.reader is None or self.reader.done():
                self.reader = asyncio.create_task(self._read())
            msg = await asyncio.wait_for(fut, timeout)
        except Exception as e:
            self.stats.error(kind, f"{type(e).__name__}: {e}")
            return None
        self.stats.add(kind, time.perf_counter() - t0)
        if msg.get("msg") != "process_completed" or not msg.get("success"):
            self.stats.error(kind, json.dumps(msg.get("output", msg))[:300])
            return None
        return msg["output"]

    async def close(self):
        if self.reader:
            self.reader.cancel()
            try:
                await self.reader
            except BaseException:
                pass


async def poller(client, base, ep: Endpoints, job_id: str, stats: Stats, stop: asyncio.Event, interval: float):
    """One Train tab: every tick, the selected job's view and the job table, each with its `seen` state."""
    s = Session(client, base, stats)
    state: dict[int, object] = {}  # component id -> value the browser holds (seen signatures, job id)
    await asyncio.sleep(random.random() * interval)
    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            for dep in ep.ticks:
                data = []
                for cid in dep["inputs"]:
                    if cid == ep.lang_id:
                        data.append("en")
                    elif cid in ep.job_ids:
                        data.append(job_id)
                    else:
                        data.append(state.get(cid, ep.default(cid)))
                kind = "poll" if len(ep.ticks) == 1 else "poll_job" if dep is ep.refresh else "poll_table"
                out = await s.call(kind, dep, data)
                if out:
                    for cid, value in zip(dep["outputs"], out.get("data", [])):
                        if cid not in ep.job_ids and not (isinstance(value, dict) and value.get("__type__") == "update"):
                            state[cid] = value
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t0)))
    finally:
        await s.close()


async def uploader(client, base, ep: Endpoints, data_file: Path, stats: Stats, stop: asyncio.Event):
    """Upload a dataset and run the Dataset tab's check on it, again and again."""
    s = Session(client, base, stats)
    payload = data_file.read_bytes()
    await asyncio.sleep(random.random())
    try:
        while not stop.is_set():
            name = f"upload-{uuid.uuid4().hex[:6]}.jsonl"
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{base}/gradio_api/upload", files={"files": (name, payload)}, timeout=120)
                if r.status_code != 200:
                    stats.error("upload", f"HTTP {r.status_code}: {r.text}")
                    await asyncio.sleep(1)
                    continue
                path = r.json()[0]
            except Exception as e:
                stats.error("upload", f"{type(e).__name__}: {e}")
                await asyncio.sleep(1)
                continue
            stats.add("upload", time.perf_counter() - t0)
            file_data = {"path": path, "orig_name": name, "size": len(payload), "mime_type": "application/jsonl",
                         "meta": {"_type": "gradio.FileData"}}
            data = []
            for cid in ep.check["inputs"]:
                ctype = ep.comps[cid]["type"]
                data.append(file_data if ctype in ("file", "uploadbutton") else "en" if cid == ep.lang_id
                            else ep.default(cid))
            await s.call("dataset_check", ep.check, data, timeout=120)
            await asyncio.sleep(1.0)
    finally:
        await s.close()


async def run_load(base: str, ep: Endpoints, job_id: str, pollers: int, uploaders: int, interval: float,
                   data_file: Path, done: "callable") -> Stats:
    import httpx
    stats = Stats()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=4 * (pollers + uploaders) + 10, max_keepalive_connections=2 * (pollers + uploaders) + 10)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        tasks = [asyncio.create_task(poller(client, base, ep, job_id, stats, stop, interval)) for _ in range(pollers)]
        tasks += [asyncio.create_task(uploader(client, base, ep, data_file, stats, stop)) for _ in range(uploaders)]
        while not await asyncio.to_thread(done):
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return stats


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


def main(argv=None) -> int:
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
    args = ap.parse_args(argv)

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
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 1 if (failures and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
