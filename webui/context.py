"""What the GUI process holds besides core's Services: nothing per browser, only shared helpers.

Per-browser state is ids in gr.State / gr.BrowserState; this object is built once by
`webui.app.launch` and handed to every tab builder, so there are no module-level singletons.
"""
from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from core import knobs
from core.launch_commands import TRAIN_MODULE
from core.services import Services
from webui.live import LiveJobs

# Hidden switch for the browser tests only: run a fake fast recipe instead of the real one, so a
# test can open and close 20 tabs around a job that writes a metric every tenth of a second.
TEST_TRAIN_MODULE_ENV = knobs.GUI_TEST_TRAIN_MODULE


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> None:
    """In the helper process: end when the GUI process is gone. A server stopped with SIGTERM runs no
    clean-up code, and an orphaned helper would keep its memory for ever."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()


@dataclass
class Gui:
    services: Services
    train_module: str = TRAIN_MODULE
    _gpu_cache: tuple[float, list] = (0.0, [])
    _chat: object | None = None
    _worker: ProcessPoolExecutor | None = None
    _live: LiveJobs | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, services: Services) -> "Gui":
        module = knobs.get(TEST_TRAIN_MODULE_ENV) or TRAIN_MODULE
        return cls(services=services, train_module=module)

    @property
    def ws(self):
        return self.services.workspace

    @property
    def store(self):
        return self.services.store

    @property
    def live(self) -> LiveJobs:
        """The jobs as every open page sees them, read once for all (webui.live)."""
        with self._lock:
            if self._live is None:
                self._live = LiveJobs(self.ws, self.store)
            return self._live

    def gpus(self, max_age: float = 10.0) -> list[dict]:
        """Detected GPUs, asked of nvidia-smi at most every `max_age` seconds (it takes ~50 ms)."""
        from core.gpus import detect_gpus
        with self._lock:
            at, cached = self._gpu_cache
            if time.time() - at > max_age:
                cached = detect_gpus()
                self._gpu_cache = (time.time(), cached)
            return cached

    def warm_helper(self) -> None:
        """Start the helper process and its data imports ahead of the first cleaning click, which
        otherwise waits ~2 s for them (bench/gui_latency.py). Errors are left for that click to report."""
        try:
            self.offload(_import_data_studio)
        except Exception:  # noqa: BLE001 - a warm-up only; the real call starts the helper again
            pass

    def offload(self, fn, *args, **kwargs):
        """Run fn(*args, **kwargs) in this GUI's helper process and return its result.

        For data work that loads a model's tokenizer (token lengths, length filters): importing
        transformers and tokenizing hold the CPU and the interpreter lock for seconds, which would
        make every other click in every open page wait. The helper process keeps its imports and
        caches between calls; if it dies it is started again on the next call."""
        for attempt in (1, 2):
            with self._lock:
                if self._worker is None:
                    self._worker = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                       initializer=exit_with_parent, initargs=(os.getpid(),))
                worker = self._worker
            try:
                return worker.submit(fn, *args, **kwargs).result()
            except BrokenProcessPool:
                with self._lock:
                    self._worker = None
                if attempt == 2:
                    raise

    def chat_engine(self):
        """One chat engine per GUI process, created on first use (it loads models lazily)."""
        with self._lock:
            if self._chat is None:
                from core.chat import ChatEngine
                self._chat = ChatEngine(self.ws)
            return self._chat


def _import_data_studio() -> None:
    """What the helper's calls need first. transformers (and the torch it brings) is the big part:
    2 s on an idle 2-core machine, 10-25 s while a job trains there, and the dataset's token
    lengths waited for it behind the first check (bench/gui_latency.py)."""
    import core.data  # noqa: F401
    try:
        from transformers import AutoTokenizer  # noqa: F401
    except ImportError:  # the first real call reports it in words
        pass
