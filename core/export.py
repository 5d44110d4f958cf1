"""Export (merge) jobs and the list of exports, for the CLI (`python app.py merge`) and the Export tab.
Pure Python (no torch).

    name = check_export_name("my-bot")                      # InputError for "../x", "/abs", "a\\0b", ...
    job = submit_merge(ws, "JOB_ID or run dir", "my-bot", dtype="bf16", max_shard_size="5GB")
    exports = list_exports(ws)   # [{name, path, complete, size_bytes, created, base_model, dtype, smoke_test, ...}]
    problem = verify_export(path)  # None when every file matches manifest.json, else the reason
    delete_export(ws, "my-bot")

The merge job (kind "merge") has its own run dir runs/<merge job id>/ (stdout.log, result.json
with timings, peak memory and the smoke-test reply) and writes the model to exports/<name>/ via
exports/<name>.partial/. It takes one GPU when the machine has one (it waits in the queue while a
job uses that GPU), else the CPU.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

from core import jobs as J
from core import launcher
from core.errors import InputError, NotFound, Problem
from core.rundir import RunDir, read_json
from core.runs import resolve_trained_run
from core.workspace import MANIFEST, Workspace, manifest_problem, read_manifest

MERGE_MODULE = "core.recipes.merge"
NAME_RE = re.compile(r"^[^\W_][\w.-]{0,99}$", re.UNICODE)  # letters/digits first; then letters, digits, _ . -
SHARD_RE = re.compile(r"^\d{1,5}(KB|MB|GB)$")


def check_export_name(name: str) -> str:
    """A folder name inside exports/: no path separators, no '..', no NUL, no leading dot; at most 100 characters."""
    raw = name if isinstance(name, str) else ""
    name = raw.strip()
    problems = []
    if not name:
        problems.append(Problem("name", "no export name given", "e.g. support-bot-v1"))
    elif "\x00" in name:
        problems.append(Problem("name", "contains a NUL character", "type the name again"))
    elif "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        problems.append(Problem("name", f"{name!r} is a path, not a name",
                                "use only letters, digits, '-', '_' and '.', e.g. support-bot-v1"))
    elif name.endswith(".partial") or not NAME_RE.match(name):
        problems.append(Problem("name", f"{name!r} is not a usable folder name",
                                "start with a letter or digit; then letters, digits, '-', '_' or '.'; at most 100 characters"))
    if problems:
        raise InputError(problems=problems, title="The export name cannot be used")
    return name


def export_path(ws: Workspace, name: str) -> Path:
    name = check_export_name(name)
    root = ws.exports.resolve()
    path = (root / name).resolve()
    if path.parent != root:  # belt and braces: the name check already rules this out
        raise InputError(problems=[Problem("name", f"{name!r} would leave the exports folder")])
    return path


def submit_merge(ws: Workspace, job_or_run: str, name: str, *, dtype: str = "bf16", max_shard_size: str = "5GB",
                 gpus: list | None = None) -> J.Job:
    """Queue adapter + base -> exports/<name>/; returns the merge job."""
    problems = []
    try:
        out = export_path(ws, name)
    except InputError as e:
        problems += e.problems
        out = None
    if dtype not in ("bf16", "fp16"):
        problems.append(Problem("dtype", f"must be bf16 or fp16, got {dtype!r}", "bf16 suits recent GPUs; fp16 older ones"))
    if not SHARD_RE.match(str(max_shard_size)):
        problems.append(Problem("max_shard_size", f"{max_shard_size!r} is not a size", "e.g. 5GB or 500MB"))
    if out is not None:
        if out.exists():
            problems.append(Problem("name", f"an export called {out.name!r} already exists", "choose another name or delete it first"))
        busy = [j for j in J.JobStore(ws.db_path).list(states=[J.QUEUED, *J.ACTIVE], kind="merge")
                if str(out) in j.argv_list]
        if busy:
            problems.append(Problem("name", f"job {busy[0].id} is already writing {out.name!r}", "wait for it or pick another name"))
    if problems:
        raise InputError(problems=problems, title="The export cannot start")
    run = resolve_trained_run(ws, job_or_run)
    if gpus is None:
        gpus, _ = launcher.resolve_devices(launcher.LaunchSpec(nproc=1))
    job_id = J.new_id()
    job_dir = ws.run_dir(job_id)
    argv = [sys.executable, "-m", MERGE_MODULE, "--adapter", str(run.adapter_dir), "--out", str(out),
            "--dtype", dtype, "--max-shard-size", max_shard_size, "--result", str(RunDir(job_dir).result)]
    return launcher.submit_command(ws, "merge", job_dir, argv, gpus=gpus[:1], nproc=1, name=f"export {out.name}",
                                   parent_id=run.job.id if run.job else "", base_model=run.base_model)



def verify_export(path: Path) -> str | None:
    """None when manifest.json lists every file with the right size and checksum, else the reason."""
    try:
        files = read_manifest(path)
    except (OSError, ValueError, KeyError):
        return "no readable manifest.json (the export did not finish)"
    return manifest_problem(path, files)


def list_exports(ws: Workspace, verify: bool = False) -> list[dict]:
    """Finished exports, newest first. `verify=True` re-hashes every file (slow for big models)."""
    out = []
    for p in sorted(ws.exports.iterdir() if ws.exports.is_dir() else [], key=lambda x: x.name):
        if not p.is_dir() or p.name.startswith(".") or p.name.endswith(".partial"):
            continue
        try:
            meta = json.loads((p / "danlu_export.json").read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        manifest_ok = (p / MANIFEST).is_file()
        size = sum(f.stat().st_size for f in p.iterdir() if f.is_file())
        row = dict(name=p.name, path=str(p), complete=manifest_ok, size_bytes=size,
                   created=meta.get("created", p.stat().st_mtime), base_model=meta.get("base_model"),
                   dtype=meta.get("dtype"), chat_template=meta.get("chat_template"),
                   smoke_test=meta.get("smoke_test", {}).get("status"), smoke_reply=meta.get("smoke_test", {}).get("reply"))
        if verify:
            row["problem"] = verify_export(p)
        out.append(row)
    return sorted(out, key=lambda r: r["created"], reverse=True)


def delete_export(ws: Workspace, name: str) -> None:
    path = export_path(ws, name)
    if not path.is_dir():
        raise NotFound(f"no export called {name!r}", "see the Export tab or `python app.py merge --list`")
    busy = [j for j in J.JobStore(ws.db_path).list(states=[J.QUEUED, *J.ACTIVE], kind="merge") if str(path) in j.argv_list]
    if busy:
        raise InputError(problems=[Problem("name", f"job {busy[0].id} is writing this export", "wait for it to finish")])
    trash = path.parent / f".{path.name}.deleting-{int(time.time())}"
    path.rename(trash)  # disappears from the list at once, even if removing the files takes a while
    shutil.rmtree(trash, ignore_errors=True)


def read_merge_result(job: J.Job) -> dict:
    return read_json(RunDir(job.run_dir).result)
