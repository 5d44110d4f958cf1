"""bench/load_gui.py's simulated clients, all asyncio tasks in one process: pollers (one browser
tab each on the Train tab: its session, SSE stream and timer events) and uploaders (upload a
dataset file and run the Dataset tab's check on it, over and over), with their latency statistics.
"""
from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path


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
