"""A job's copy in its run folder (runs/<run>/jobs/<id>.json, written by core.jobs on every change of
its row) read back for core.jobs.rebuild: only what Danlu itself could have written there."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from core import procs
from core.rundir import RunDir, read_small_json
from core.workspace import REPO_ROOT

COPY_MAX_BYTES = 1 << 20  # a row is a few KiB, with a supervisor's traceback in its message tens
_TYPES = {"TEXT": (str,), "INTEGER": (int,), "REAL": (int, float)}
TORCHRUN = "torch.distributed.run"
# what core.launch_commands.recipe_command gives torchrun, each with its value (and --standalone alone)
TORCHRUN_OPTIONS = frozenset({"--nproc-per-node", "--max-restarts", "--log-dir", "--redirects", "--tee", "--nnodes",
                              "--node-rank", "--master-addr", "--master-port", "--rdzv-conf"})


def row_from_copy(path: Path, column_defs: list, states: tuple, executors: tuple) -> dict | None:
    """The row a copy holds, or None when it is not one Danlu wrote for this folder: a link, a pipe, a
    device or a huge file; torn JSON; a column missing or of another type; a state not in `states`;
    another job's id or another folder's; an executor not in `executors` (restored, it stopped every
    reconcile: "no executor called ...")."""
    data = read_small_json(path, COPY_MAX_BYTES)
    row = {}
    for name, sqltype in column_defs:
        value = data.get(name)
        kind = _TYPES[sqltype.split()[0]]
        if value is None and "NOT NULL" not in sqltype:
            row[name] = None
        elif isinstance(value, kind) and not isinstance(value, bool):
            row[name] = value
        else:
            return None
    if row["id"] != path.stem or row["state"] not in states or Path(row["run_dir"]).name != path.parent.parent.name:
        return None
    if row["executor"] not in executors:
        return None
    row["argv"] = own_command(row["argv"], row["run_dir"])
    old, row["run_dir"] = row["run_dir"], str(path.parent.parent)  # the workspace may have moved since
    if row["config_path"].startswith(old + os.sep):
        row["config_path"] = row["run_dir"] + row["config_path"][len(old):]
    return row


def own_command(argv_text: str, run_dir: str) -> str:
    """The argv a copy holds (JSON text) when it is one core.launch_commands makes: Python running a
    module of this Danlu's own code, straight or under torchrun with the options Danlu gives it; the
    Python is this one, whatever the copy names. Else "[]": a resume runs a job's argv, and a copy is a
    file anyone may edit or bring in with a run folder (a copy's ["sh", "-c", ...] was restored as is)."""
    try:
        argv = json.loads(argv_text)
    except (ValueError, RecursionError):
        return "[]"
    if not (isinstance(argv, list) and len(argv) > 2 and all(isinstance(a, str) for a in argv) and argv[1] == "-m"):
        return "[]"
    rest = argv[2:]
    if rest[0] == TORCHRUN:
        rest = _after_torchrun_options(rest[1:], run_dir)
    return json.dumps([sys.executable, *argv[1:]]) if rest and _own_module(rest[0]) else "[]"


def _after_torchrun_options(args: list[str], run_dir: str) -> list[str]:
    """The recipe's module and arguments after torchrun's options; [] for an option Danlu never gives
    (--no-python would run any program) or a log folder outside the run's."""
    i = 0
    while i < len(args) and args[i] != "-m":
        if args[i] == "--standalone":
            i += 1
        elif args[i] in TORCHRUN_OPTIONS and i + 1 < len(args):
            if args[i] == "--log-dir" and args[i + 1] != str(RunDir(run_dir).ranks):
                return []
            i += 2
        else:
            return []
    return args[i + 1:]


def _own_module(name: str) -> bool:
    parts = name.split(".")
    return all(p.isidentifier() for p in parts) and REPO_ROOT.joinpath(*parts).with_suffix(".py").is_file()


def own_processes(row: dict) -> None:
    """The processes a copy of an unfinished job names count only while they carry the job's mark
    (core.procs): a cancel kills a job's recorded processes, and a copy naming any other pid with its start time had a
    cancel kill that process. One of them not marked: the supervisor and agent count as gone, the
    worker is left out."""
    try:
        workers = json.loads(row["worker_pids"])
    except (ValueError, RecursionError):
        workers = []
    kept = [w for w in workers if isinstance(w, list) and len(w) == 2 and isinstance(w[0], int)
            and isinstance(w[1], (int, float)) and procs.carries_mark(w[0], row["id"])] if isinstance(workers, list) else []
    row["worker_pids"] = json.dumps(kept)
    for who in ("supervisor", "agent"):
        if row[f"{who}_pid"] is not None and not procs.carries_mark(row[f"{who}_pid"], row["id"]):
            row[f"{who}_ctime"] = -1.0  # no process started then: procs.alive says gone
