"""Every DANLU_* environment variable Danlu reads or sets, what it is for, and who may set it.
Production code reads them only through get() here (tests/test_knobs.py fails on any other read,
and on a DANLU_ name that is not declared below). None of them changes a setting of TrainConfig:
settings live in the config file, the page and --set.

    python -m core.knobs            # prints the table

Kinds:
    setting     for people running Danlu (a command-line option, where there is one, wins)
    internal    set by Danlu for its own child processes; never set it yourself
    benchmark   switches between speed variants that bench/ compares (the default is the measured best)
    test hook   for tests only: fault injection and fake hardware, so the job system can be tested
                on a CPU machine. A job sees the fault and job hooks only when they are written into
                its launch_env.json (LaunchSpec.env; the CLI forwards DANLU_FAULT), never from the
                environment of the GUI that started it
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

SETTING, INTERNAL, BENCHMARK, TEST_HOOK = "setting", "internal", "benchmark", "test hook"


@dataclass(frozen=True)
class Knob:
    name: str
    kind: str
    purpose: str
    read_by: str


KNOBS: dict[str, Knob] = {}


def _declare(name: str, kind: str, purpose: str, read_by: str) -> str:
    KNOBS[name] = Knob(name, kind, purpose, read_by)
    return name


HOME = _declare("DANLU_HOME", SETTING, "the workspace: every file Danlu makes (default ~/.danlu); --home wins",
                "core.workspace")
PORT = _declare("DANLU_PORT", SETTING, "the GUI's port (default 7860); --port wins", "cli.gui_cmd")
MAX_UPLOAD = _declare("DANLU_MAX_UPLOAD", SETTING, "the largest upload the GUI accepts (default 2gb); "
                      "--max-file-size wins", "cli.gui_cmd")
ALLOWED_ORIGINS = _declare("DANLU_ALLOWED_ORIGINS", SETTING, "comma-separated origins a reverse proxy serves the "
                           "GUI from (https://danlu.example.com), besides the address it binds", "webui.serving")
DEMO_AUTH = _declare("DANLU_DEMO_AUTH", SETTING, "a shared chat demo's login USER:PASS, instead of --auth (the GUI "
                     "hands it to the demo process this way, so it never shows in `ps`)", "cli.model_cmd")
TOOLS_DIR = _declare("DANLU_TOOLS_DIR", SETTING, "where llama.cpp's GGUF converter is unpacked (default "
                      "$XDG_CACHE_HOME/danlu or ~/.cache/danlu)", "core.gguf_tools")
DIST_TIMEOUT_MIN = _declare("DANLU_DIST_TIMEOUT_MIN", SETTING, "minutes a rank waits for the others in a collective "
                            "before the job fails (default 10)", "core.engine.common")
JOIN_TIMEOUT_S = _declare("DANLU_JOIN_TIMEOUT_S", SETTING, "seconds the machines of a job on several machines "
                          "(train --nnodes) wait for each other at torchrun's rendezvous before the job fails "
                          "(default 600, torchrun's own); read when the job is submitted", "core.launch_commands")
DEBUG = _declare("DANLU_DEBUG", SETTING, "1: the CLI prints the traceback of an unexpected error", "cli.main")
JOB_ID = _declare("DANLU_JOB_ID", INTERNAL, "marks every process of a job with its id, so a sweep finds them all",
                  "core.procs (in /proc/PID/environ)")
CHAT_AUTHKEY = _declare("DANLU_CHAT_AUTHKEY", INTERNAL, "the secret between the GUI and its chat worker process",
                        "core.engine.chat_worker (removed from its environment at once)")
CKPT_IN_GRAPH = _declare("DANLU_CKPT_IN_GRAPH", BENCHMARK, "0: checkpoint compiled layers around the compiled call "
                         "instead of inside it (default 1)", "core.engine.speed")
CKPT_POLICY = _declare("DANLU_CKPT_POLICY", BENCHMARK, "prefer: let the compiler keep some activations instead of "
                       "recomputing all (default all)", "core.engine.speed")
MEMORY_SNAPSHOT = _declare("DANLU_MEMORY_SNAPSHOT", BENCHMARK, "a file path: rank 0 of a CUDA run records every GPU "
                           "allocation of its first two steps and writes torch's memory snapshot there "
                           "(bench/memory_peak.py reads it)", "core.engine.memory_trace")
GPU_MEMORY_CAP_GIB = _declare("DANLU_GPU_MEMORY_CAP_GIB", BENCHMARK, "a number of GiB: each rank may use at most that "
                               "much of its GPU (torch.cuda.set_per_process_memory_fraction), as a smaller card "
                               "would, and the memory plan plans against it (bench/bigger.py's fit-24 group; "
                               "bench/gpu_cap/ puts the same cap on a peer's process)", "core.engine.common")
FAULT = _declare("DANLU_FAULT", TEST_HOOK, "inject faults into one attempt: crash@STEP:RANK, nan@STEP, hang@STEP:RANK, "
                 "spam@STEP:RANK, enospc@STEP, slow@STEP, deaf, export_hang@STEP (core.engine.faults); a Slurm "
                 "job's first attempt only", "the recipes, tests/jobs/fake_recipe.py")
SPAM_MB = _declare("DANLU_SPAM_MB", TEST_HOOK, "megabytes the spam fault prints (default 50)",
                   "core.recipes.train, tests/jobs/fake_recipe.py")
STALL_MINUTES = _declare("DANLU_STALL_MINUTES", TEST_HOOK, "a stall limit below stall_minutes' minimum of 0.5, from "
                         "the job's launch_env.json only; the supervisor logs that it applies", "core.supervise")
MIN_FREE_MB = _declare("DANLU_MIN_FREE_MB", TEST_HOOK, "the free disk space a job needs to start (default 200), "
                       "from the job's launch_env.json only", "core.supervise")
FAKE_GPUS = _declare("DANLU_FAKE_GPUS", TEST_HOOK, "4 or 0,1,2,3: the launcher sees these GPUs (no GPU needed for the "
                     "lease and queue logic)", "core.gpus")
GUI_TEST_TRAIN_MODULE = _declare("DANLU_GUI_TEST_TRAIN_MODULE", TEST_HOOK, "the GUI starts this module instead of "
                                 "core.recipes.train (tests/webui/fake_recipe.py)", "webui.context")
FAKE_STEPS = _declare("DANLU_FAKE_STEPS", TEST_HOOK, "steps a fake recipe runs", "tests/webui/fake_recipe.py")
FAKE_STEP_S = _declare("DANLU_FAKE_STEP_S", TEST_HOOK, "seconds per step of a fake recipe",
                       "tests/jobs/fake_recipe.py, tests/webui/fake_recipe.py")
FAKE_FAIL_AT = _declare("DANLU_FAKE_FAIL_AT", TEST_HOOK, "the step at which the GUI tests' fake recipe fails",
                        "tests/webui/fake_recipe.py")


def get(name: str, default: str | None = None) -> str | None:
    """The variable's value (or default). Only declared names may be read."""
    if name not in KNOBS:
        raise KeyError(f"{name} is not declared in core/knobs.py")
    return os.environ.get(name, default)


def number(name: str, default: float | None = None) -> float | None:
    """A numeric knob as a positive number (default when unset or empty). Any other value stops
    with words naming the variable, not a ValueError from deep inside a rank's set-up."""
    value = (get(name) or "").strip()
    if not value:
        return default
    try:
        n = float(value)
    except ValueError:
        n = float("nan")
    if not (0 < n < float("inf")):
        from core.errors import DanluError
        from core.messages import Msg
        raise DanluError(Msg("knob.bad_number", name=name, value=value[:40]), Msg("knob.bad_number.hint", name=name))
    return n


def take(name: str) -> str | None:
    """Read and remove (a secret that the process's own children must not inherit)."""
    get(name)
    return os.environ.pop(name, None)


def table() -> str:
    rows = [f"{k.name:<28} {k.kind:<10} {k.purpose}  [{k.read_by}]" for k in KNOBS.values()]
    return "\n".join([f"{'variable':<28} {'kind':<10} purpose  [read by]", *rows]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
