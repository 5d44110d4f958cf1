"""Chat with a model, from the GUI, the CLI or the demo app, without loading torch in that process.

    engine = ChatEngine(ws)
    sid = engine.load("builtin:danlu-tiny", adapter="JOB_ID", origin=trust.SHELL)   # or a merged export's name, a model folder,
                                                                 # a preset, a hub id, or a training job id alone
    for delta in engine.stream(sid, [{"role": "user", "content": "Hi"}], system="Be brief.",
                               temperature=0.7, top_p=0.9, max_new_tokens=256, repetition_penalty=1.1):
        print(delta, end="")
    engine.info(sid)      # {model, adapter, device, quantization, template, notes, ...}
    engine.unload(sid)    # frees the model; the worker process exits when it holds no model any more
    engine.close()        # stop every worker this engine started

Compare mode (base versus fine-tuned) is two sessions: load(base_model) and load(base_model, adapter=...).

The models live in a worker process (`python -m core.engine.chat_worker`), one per device, reached
over a private Unix socket with a shared secret (see that module for the protocol). On CUDA a
model loads in 4-bit; on a CPU machine in full precision. `load` refuses, in words, when a running
job holds the GPU it would need; on a CPU-only machine it loads anyway and says answers will be slower.

Pure Python here: no torch, no gradio.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Client
from pathlib import Path

from core import jobs as J
from core import knobs, procs, trust
from core.config import as_number, quoted
from core.errors import DanluError, InputError, Problem
from core.paths import is_dir, is_file
from core.messages import Msg, recorded
from core.gpus import detect_gpus
from core.rundir import RunDir, adapter_info_path, read_json
from core.runs import check_adapter_dir, resolve_trained_run
from core.workspace import REPO_ROOT, Workspace, python_path

WORKER_MODULE = "core.engine.chat_worker"
TEMPLATES = ("auto", "chatml")


class ChatError(DanluError):
    """The worker could not load or answer (it says why)."""


@dataclass(frozen=True)
class ChatTarget:
    model: str               # folder or hub id to load
    adapter: str | None      # adapter folder, or None
    trust_remote_code: bool
    local: bool
    template: str            # "auto" or "chatml"
    label: str               # what the person typed, for display


def resolve_target(ws: Workspace, model: str | None, adapter: str | None = None, template: str = "auto", *,
                   origin: str, builtin: str = "build") -> ChatTarget:
    """What to load for `model` (+ `adapter`). Order: a merged export's name, a training job id or run
    folder (= its base + adapter), then anything `core.models.resolve_model` accepts. origin
    (core.trust): from the page, a folder must lie inside the workspace or the allowed folders."""
    from core.models import resolve_model
    if template not in TEMPLATES:
        raise InputError(problems=[Problem("template", Msg("chat.template", choices=", ".join(TEMPLATES), value=repr(template)))])
    model, adapter = trust.check_chat(model, adapter, ws, origin)
    remote_code = False
    adapter_dir = None
    adapter_info: dict = {}
    if adapter:
        adapter_dir, adapter_info = _resolve_adapter(ws, adapter)
        remote_code = bool(adapter_info.get("trust_remote_code"))
        if adapter_info.get("chat_template") == "chatml" and template == "auto":
            template = "chatml"
    if not model:
        if not adapter_info.get("base_model"):
            raise InputError(problems=[Problem("model", Msg("chat.no_model"), Msg("chat.no_model.hint"))])
        model = adapter_info["base_model"]
    export = _export_dir(ws, model)
    if export is not None:
        meta = read_json(export / "danlu_export.json")
        return ChatTarget(str(export), str(adapter_dir) if adapter_dir else None,
                          remote_code or bool(meta.get("trust_remote_code")), True, template, model)
    if adapter_dir is None and "\x00" not in model and _is_run_ref(ws, model):
        run = resolve_trained_run(ws, model)  # a job without a finished adapter says so here
        if run is not None:
            tmpl = "chatml" if run.info.get("chat_template") == "chatml" and template == "auto" else template
            ref = resolve_model(run.base_model, ws, builtin=builtin)
            return ChatTarget(ref.source, str(run.adapter_dir), bool(run.info.get("trust_remote_code")), ref.local,
                              tmpl, model)
    ref = resolve_model(model, ws, builtin=builtin)
    return ChatTarget(ref.source, str(adapter_dir) if adapter_dir else None, remote_code, ref.local, template, model)


def _is_run_ref(ws: Workspace, name: str) -> bool:
    """A job id (or unique prefix) in the job table, or a run folder (config.yaml + adapter/)."""
    if "/" not in name and J.JobStore(ws.db_path).find(name) is not None:
        return True
    p = Path(name).expanduser()
    run = RunDir(p)
    return is_dir(p) and run.config.is_file() and run.adapter.is_dir()


def _export_dir(ws: Workspace, name: str) -> Path | None:
    if not name or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
        return None
    p = ws.exports / name
    if p.is_symlink():  # not an export Danlu made (core.export.list_exports does not list it): never followed out
        return None
    return p.resolve() if is_file(p / "config.json") else None


def _resolve_adapter(ws: Workspace, adapter: str) -> tuple[Path, dict]:
    p = Path(adapter).expanduser()
    if is_dir(p) and (p / "adapter_config.json").exists():
        d = check_adapter_dir(p)
    elif is_dir(p) and RunDir(p).adapter.is_dir():
        d = check_adapter_dir(RunDir(p).adapter)
    else:
        d = resolve_trained_run(ws, adapter).adapter_dir
    return d, read_json(adapter_info_path(d))


# ---- where the model may run --------------------------------------------------------------------
def choose_device(ws: Workspace, device: str = "auto") -> tuple[str, list[str]]:
    """("cpu" | "cuda:N", notes). Refuses a GPU that a running job holds: a second model there could
    make the job run out of memory and fail."""
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda:\d{1,4}", device):  # said back as typed: repr
        raise InputError(problems=[Problem("device", Msg("chat.bad_device", value=repr(device)[:60]), Msg("chat.bad_device.hint"))])
    gpus = [g["index"] for g in detect_gpus()]
    active = J.JobStore(ws.db_path).list(states=J.ACTIVE)
    if device == "cpu" or not gpus:
        if device not in ("auto", "cpu"):
            raise InputError(problems=[Problem("device", Msg("chat.no_gpu", device=device), Msg("chat.no_gpu.hint"))])
        notes = []
        busy = [j for j in active if j.gpu_list == ["cpu"]]
        if busy:
            notes.append(f"A {busy[0].kind} job ({busy[0].id}) is running on this computer's processor: chat works at "
                         "the same time, but answers will come more slowly.")
        return "cpu", notes
    if device == "auto":
        wanted = gpus
    else:
        wanted = [int(device.split(":")[-1])]
        if wanted[0] not in gpus:
            raise InputError(problems=[Problem("device", Msg("chat.gpu_missing", n=wanted[0], gpus=str(gpus)))])
    held = {str(g): j for j in active for g in j.gpu_list}
    free = [g for g in wanted if str(g) not in held]
    if not free:
        job = held[str(wanted[0])]
        which = Msg("chat.every_gpu") if len(wanted) > 1 else Msg("chat.gpu_n", n=wanted[0])
        raise InputError(problems=[Problem(
            "device", Msg("chat.gpu_busy", state=J.state_word(job.state), kind=job.kind, id=job.id,
                          name=job.name or Msg("chat.unnamed"), which=which), Msg("chat.gpu_busy.hint"))],
            title=Msg("chat.gpu_busy_title"))
    return f"cuda:{free[0]}", []


# ---- the worker process --------------------------------------------------------------------------
class _Worker:
    def __init__(self, ws: Workspace, device: str):
        self.device = device
        self.ready = threading.Event()
        self.dir = Path(tempfile.mkdtemp(prefix="danlu-chat-"))  # 0700; short path (Unix sockets allow ~100 chars)
        self.socket = str(self.dir / "sock")
        self.key = secrets.token_bytes(32)
        logs = ws.root / "logs"
        logs.mkdir(exist_ok=True)
        self.log_path = logs / f"chat-worker-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{secrets.token_hex(2)}.log"
        env = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1",
                   HF_HUB_DISABLE_PROGRESS_BARS="1", TOKENIZERS_PARALLELISM="false",
                   CUDA_VISIBLE_DEVICES="" if device == "cpu" else device.split(":")[1],
                   CUDA_DEVICE_ORDER="PCI_BUS_ID")  # the index is nvidia-smi's (core.gpus)
        env.update({knobs.HOME: str(ws.root), knobs.CHAT_AUTHKEY: self.key.hex()})
        me = os.getpid()
        with open(self.log_path, "ab") as log:  # a file, never a pipe that nobody drains
            self.proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, "--socket", self.socket, "--parent-pid", str(me),
                 "--parent-ctime", str(procs.create_time(me) or "")],
                cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                shutil.rmtree(self.dir, ignore_errors=True)  # it died before serving: nobody else removes it
                raise ChatError(Msg("chat.worker_died", rc=self.proc.returncode),
                                hint=Msg("chat.see_log_tail.hint", path=str(self.log_path), tail=_tail(self.log_path)))
            if os.path.exists(self.socket):
                try:
                    if self.request({"op": "ping"}, timeout=10).get("ok"):
                        return
                except (OSError, EOFError, ChatError):
                    pass
            time.sleep(0.1)
        self.stop()
        raise ChatError(Msg("chat.worker_slow", seconds=f"{timeout:.0f}"), hint=Msg("chat.see_log.hint", path=str(self.log_path)))

    def connect(self):
        return Client(self.socket, family="AF_UNIX", authkey=self.key)

    def request(self, obj: dict, timeout: float | None = None) -> dict:
        conn = self.connect()
        try:
            conn.send_bytes(json.dumps(obj).encode("utf-8"))
            if timeout is not None and not conn.poll(timeout):
                raise ChatError(Msg("chat.no_answer", seconds=f"{timeout:.0f}"), hint=Msg("chat.see.hint", path=str(self.log_path)))
            return json.loads(conn.recv_bytes().decode("utf-8"))
        finally:
            conn.close()

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive:
            try:
                self.request({"op": "shutdown"}, timeout=5)
            except (OSError, EOFError, ChatError):
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        shutil.rmtree(self.dir, ignore_errors=True)


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _raise_for(reply: dict) -> dict:
    if reply.get("ok") is False or "error" in reply:
        err = reply.get("error") or {}
        raise ChatError(recorded(err, "message") or Msg("chat.worker_failed"), hint=recorded(err, "hint"), where=err.get("where", ""))
    return reply


def sampling(**values) -> dict:
    """The sampling settings (temperature, top_p, max_new_tokens, repetition_penalty) as the numbers the worker
    takes, or InputError naming each one out of its bounds (core.gen_settings, which the worker checks
    again). The page's sliders sent straight to the HTTP API may hold anything: NaN, 1e999, text, 5,000 digits."""
    from core.gen_settings import problem
    out, problems = {}, []
    for name, value in values.items():
        n = as_number(value, int if name == "max_new_tokens" else float)
        p = problem(name, n, quoted(value))
        if p is None:
            out[name] = n
        else:
            problems.append(p)
    if problems:
        raise InputError(problems=problems, title=Msg("chat.settings_title"))
    return out


@dataclass
class ChatStream:
    """Iterate for text pieces as they are generated; `.stats` (time to first token, tokens/s) at the end."""
    _gen: object
    stats: dict = field(default_factory=dict)
    text: str = ""

    def __iter__(self):
        for delta in self._gen:  # type: ignore[attr-defined]
            self.text += delta
            yield delta

    def close(self):
        self._gen.close()  # type: ignore[attr-defined]


class ChatEngine:
    def __init__(self, ws: Workspace, start_timeout: float = 180.0, load_timeout: float = 1800.0):
        self.ws = ws
        self.start_timeout, self.load_timeout = start_timeout, load_timeout
        self._workers: dict[str, _Worker] = {}
        self._sessions: dict[str, dict] = {}  # session id -> {worker, info, notes, target}
        self._lock = threading.Lock()
        atexit.register(self.close)

    # -- models --
    def load(self, model: str | None, adapter: str | None = None, *, origin: str, device: str = "auto",
             quantization: str = "auto", template: str = "auto") -> str:
        """Load a model (+ adapter) and return its session id. Raises InputError / ChatError in words.
        origin: where model and adapter came from (core.trust)."""
        if quantization not in ("auto", "4bit", "8bit", "none"):
            raise InputError(problems=[Problem("quantization", Msg("chat.quantization", value=repr(quantization)))])
        target = resolve_target(self.ws, model, adapter, template, origin=origin)
        dev, notes = choose_device(self.ws, device)
        worker = self._worker(dev)
        reply = _raise_for(worker.request(dict(op="load", model=target.model, adapter=target.adapter, quantization=quantization,
                                               template=target.template, trust_remote_code=target.trust_remote_code,
                                               local=target.local, label=target.label), timeout=self.load_timeout))
        info = dict(reply["info"], label=target.label, notes=notes + reply["info"].get("notes", []), device=dev)
        with self._lock:
            self._sessions[reply["session"]] = dict(worker=dev, info=info)
        return reply["session"]

    def info(self, session_id: str) -> dict:
        return dict(self._session(session_id)["info"])

    def sessions(self) -> list[dict]:
        with self._lock:
            return [dict(s["info"], session=sid) for sid, s in self._sessions.items()]

    def unload(self, session_id: str) -> dict:
        """Free the model. A worker left without models exits, which returns all of its memory (GPU included)."""
        with self._lock:
            sess = self._sessions.pop(session_id, None)
        if sess is None:
            return dict(ok=True, sessions=[])
        worker = self._workers.get(sess["worker"])
        if worker is None or not worker.alive:
            return dict(ok=True, sessions=[])
        reply = _raise_for(worker.request(dict(op="unload", session=session_id), timeout=60))
        if not reply.get("sessions"):
            with self._lock:
                self._workers.pop(sess["worker"], None)
            worker.stop()
            reply["worker_stopped"] = True
        return reply

    def close(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            self._sessions.clear()
        for w in workers:
            w.stop()

    # -- answers --
    def stream(self, session_id: str, messages: list[dict], system: str = "", temperature: float = 0.7,
               top_p: float = 0.9, max_new_tokens: int = 256, repetition_penalty: float = 1.1,
               max_prompt_tokens: int | None = None, min_new_tokens: int = 0) -> ChatStream:
        """Text pieces as they are generated. `min_new_tokens` is for benchmarks (a fixed answer length)."""
        sess = self._session(session_id)
        worker = self._workers.get(sess["worker"])
        if worker is None or not worker.alive:
            raise ChatError(Msg("chat.model_gone"), hint=Msg("chat.model_gone.hint"))
        msgs = [{"role": m["role"], "content": _text(m["content"])} for m in messages]
        bad = [i for i, m in enumerate(msgs) if m["role"] not in ("user", "assistant", "system")]
        if bad or not msgs or msgs[-1]["role"] != "user":
            raise InputError(problems=[Problem("messages", Msg("chat.bad_roles"))])
        settings = sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                            repetition_penalty=repetition_penalty)
        req = dict(op="stream", session=session_id, messages=msgs, system=system or "", max_prompt_tokens=max_prompt_tokens,
                   settings=dict(settings, min_new_tokens=int(min_new_tokens)))
        stream = ChatStream(None)
        stream._gen = self._stream_gen(worker, req, stream)
        return stream

    def _stream_gen(self, worker: _Worker, req: dict, stream: ChatStream):
        conn = worker.connect()
        try:
            conn.send_bytes(json.dumps(req, ensure_ascii=False).encode("utf-8"))
            while True:
                msg = json.loads(conn.recv_bytes().decode("utf-8"))
                if "delta" in msg:
                    yield msg["delta"]
                elif msg.get("done"):
                    stream.stats = msg.get("stats", {})
                    return
                else:
                    _raise_for(msg)
                    return
        except EOFError:
            raise ChatError(Msg("chat.died_answering"), hint=Msg("chat.see_log.hint", path=str(worker.log_path)))
        finally:
            conn.close()  # closing early tells the worker to stop generating

    def reply(self, session_id: str, messages: list[dict], **settings) -> str:
        s = self.stream(session_id, messages, **settings)
        return "".join(s)

    # -- internals --
    def _session(self, session_id: str) -> dict:
        with self._lock:
            sess = self._sessions.get(session_id)
        if sess is None:
            raise InputError(problems=[Problem("session", Msg("chat.not_loaded"), Msg("chat.not_loaded.hint"))])
        return sess

    def _worker(self, device: str) -> _Worker:
        with self._lock:
            w = self._workers.get(device)
            starting = w is None or not w.alive
            if starting:
                w = _Worker(self.ws, device)
                self._workers[device] = w
        if not starting:  # another thread may still be starting it: wait for that, not for a socket
            if not w.ready.wait(self.start_timeout) or not w.alive:
                raise ChatError(Msg("chat.worker_no_start"), hint=Msg("chat.see_log.hint", path=str(w.log_path)))
            return w
        try:
            w.wait_ready(self.start_timeout)
        except BaseException:
            with self._lock:
                self._workers.pop(device, None)
            w.stop()
            raise
        w.ready.set()
        return w


def _text(content) -> str:
    """Gradio 6 hands message content over as a list of blocks; plain strings pass through."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict) and c.get("type", "text") == "text")
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return str(content)
