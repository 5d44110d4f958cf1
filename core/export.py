"""Export (merge) jobs and the list of exports, for the CLI (`python app.py merge`) and the Export tab.
Pure Python (no torch).

    name = check_export_name("my-bot")                      # InputError for "../x", "/abs", "a\\0b", ...
    job = submit_merge(ws, "JOB_ID or run dir", "my-bot", origin=trust.SHELL, dtype="bf16", max_shard_size="5GB",
                       formats="q4_k_m,q8_0,lora,ollama", system="")   # formats: core.export_formats
    plan = export_plan(ws, "JOB_ID", "q4_k_m,ollama")  # {params, rows: [{format, bytes, seconds}], free_bytes, ...}
    exports = list_exports(ws)   # [{name, path, complete, size_bytes, created, base_model, dtype, smoke_test, formats, ...}]
    problem = verify_export(path)  # None when every file matches manifest.json, else the reason

The merge job (kind "merge") has its own run dir runs/<merge job id>/ (stdout.log, result.json
with timings, peak memory and the smoke-test reply) and writes the model to exports/<name>/ via
exports/<name>.partial/. It takes one GPU when the machine has one (it waits in the queue while a
job uses that GPU), else the CPU.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from core import jobs as J
from core import launcher, trust
from core.errors import InputError, Problem
from core.paths import is_dir
from core.export_formats import estimates, gguf_types, parse_formats, scratch_bytes
from core.messages import Msg
from core.rundir import RunDir, partial_link_problem, read_json
from core.runs import resolve_trained_run
from core.workspace import MANIFEST, Workspace, folder_bytes, manifest_problem, read_manifest

MERGE_MODULE = "core.recipes.merge"
NAME_RE = re.compile(r"^[^\W_][\w.-]{0,99}$", re.UNICODE)  # letters/digits first; then letters, digits, _ . -
SHARD_RE = re.compile(r"^0*[1-9]\d{0,4}(KB|MB|GB)$")  # 0GB wrote every tensor into a file of its own


def check_export_name(name: str) -> str:
    """A folder name inside exports/: no path separators, no '..', no NUL, no leading dot; at most 100 characters."""
    raw = name if isinstance(name, str) else ""
    name = raw.strip()
    problems = []
    if not name:
        problems.append(Problem("name", Msg("export.no_name"), Msg("export.no_name.hint")))
    elif "\x00" in name:
        problems.append(Problem("name", Msg("any.nul"), Msg("any.type_name_again")))
    elif "/" in name or "\\" in name or name in (".", "..") or ".." in name:
        problems.append(Problem("name", Msg("export.is_path", name=repr(name)), Msg("export.is_path.hint")))
    elif name.endswith(".partial") or not NAME_RE.match(name):
        problems.append(Problem("name", Msg("export.bad_name", name=repr(name)), Msg("export.bad_name.hint")))
    if problems:
        raise InputError(problems=problems, title=Msg("export.name_title"))
    return name


def export_target(ws: Workspace, name: str, origin: str) -> Path:
    """Where an export goes. From the page: a name, as exports/<name>/. From the command line a folder
    path is taken too (XTuner's `convert merge ... SAVE_DIR`): any folder that does not exist yet, whose
    parent does; it is written as <folder>.partial/ beside it and renamed when complete, like a named one."""
    text = name.strip() if isinstance(name, str) else ""
    if trust._origin(origin) == trust.BROWSER or not ("/" in text or text.startswith((".", "~"))):
        return export_path(ws, name)
    if "\x00" in text:
        raise InputError(problems=[Problem("out", Msg("any.nul"), Msg("export.out_again.hint"))],
                         title=Msg("export.out_title"))
    out = Path(text).expanduser().resolve()
    problems = []
    partial = out.parent / f"{out.name}.partial"
    if out.name.endswith(".partial") or out == Path(out.anchor):
        problems.append(Problem("out", Msg("export.out_unusable", text=repr(text)), Msg("export.out_unusable.hint")))
    elif not is_dir(out.parent):
        problems.append(Problem("out", Msg("export.out_no_parent", path=str(out.parent)), Msg("export.out_no_parent.hint")))
    elif partial.exists() or partial.is_symlink():
        # the export removes a leftover <name>.partial before it writes one: outside exports/ it is the user's
        problems.append(Problem("out", Msg("export.partial_in_way", path=str(partial)), Msg("export.partial_in_way.hint")))
    elif (reason := cannot_make_folder_in(out.parent)) is not None:
        problems.append(Problem("out", Msg("export.out_unwritable", path=str(out.parent), reason=reason),
                                Msg("export.out_unwritable.hint")))
    if problems:
        raise InputError(problems=problems, title=Msg("export.out_title"))
    return out


def cannot_make_folder_in(parent: Path) -> str | None:
    """The system's reason no folder can be made in `parent` (a read-only disk, /proc, no permission), found
    by making and removing an empty one; None when it can. The job found out only after the merge, with a
    traceback ("FileNotFoundError: '/proc/x.partial'")."""
    try:
        Path(tempfile.mkdtemp(prefix=".danlu-", suffix=".probe", dir=parent)).rmdir()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


def export_path(ws: Workspace, name: str) -> Path:
    name = check_export_name(name)
    root = ws.exports.resolve()
    path = (root / name).resolve()
    if path.parent != root:  # belt and braces: the name check already rules this out
        raise InputError(problems=[Problem("name", Msg("export.leaves", name=repr(name)))])
    return path


def submit_merge(ws: Workspace, job_or_run: str, name: str, *, origin: str, dtype: str = "bf16",
                 max_shard_size: str = "5GB", formats=None, system: str = "", gpus: list | None = None) -> J.Job:
    """Queue adapter + base -> exports/<name>/ (or, from the shell, a folder path: export_target) in the
    requested formats; returns the merge job."""
    problems = []
    try:
        chosen = parse_formats(formats)
    except InputError as e:
        problems += e.problems
        chosen = []
    if not isinstance(system, str) or "\x00" in system or len(system) > 20000:
        problems.append(Problem("system", Msg("export.bad_system"), Msg("export.bad_system.hint")))
    elif '"""' in system and "ollama" in chosen:  # the Modelfile's quotes: found only after the merge and GGUF steps
        problems.append(Problem("system", Msg("export.system_quotes"), Msg("export.system_quotes.hint")))
    try:
        out = export_target(ws, name, origin)
    except InputError as e:
        problems += e.problems
        out = None
    if dtype not in ("bf16", "fp16"):
        problems.append(Problem("dtype", Msg("export.dtype", value=repr(dtype)), Msg("export.dtype.hint")))
    if not SHARD_RE.match(str(max_shard_size)):
        problems.append(Problem("max_shard_size", Msg("export.shard", value=repr(max_shard_size)), Msg("export.shard.hint")))
    if out is not None:
        if (link := partial_link_problem(out)) is not None:
            problems.append(link)
        if out.exists():
            problems.append(Problem("name", Msg("export.exists", name=repr(out.name)) if out.parent == ws.exports.resolve()
                                    else Msg("export.exists_path", path=str(out)), Msg("export.exists.hint")))
        busy = [j for j in J.JobStore(ws.db_path).list(states=[J.QUEUED, *J.ACTIVE], kind="merge")
                if str(out) in j.argv_list]
        if busy:
            problems.append(Problem("name", Msg("export.busy", id=busy[0].id, name=repr(out.name)), Msg("export.busy.hint")))
    if problems:
        raise InputError(problems=problems, title=Msg("export.title"))
    run = resolve_trained_run(ws, job_or_run)
    if gpus is None:
        gpus, _ = launcher.resolve_devices(launcher.LaunchSpec(nproc=1))
    job_id = J.new_id()
    job_dir = ws.run_dir(job_id)
    argv = [sys.executable, "-m", MERGE_MODULE, "--adapter", str(run.adapter_dir), "--out", str(out),
            "--dtype", dtype, "--max-shard-size", max_shard_size, "--formats", ",".join(chosen),
            "--result", str(RunDir(job_dir).result)]
    if system:
        argv += ["--system", system]
    prompt = check_prompt(run.run_dir)
    if prompt:
        argv += ["--smoke-prompt", prompt]
    # named after the export's folder: the job table's kind column says "export" in the page's language
    return launcher.submit_command(ws, "merge", job_dir, argv, gpus=gpus[:1], nproc=1, name=out.name,
                                   parent_id=run.job.id if run.job else "", base_model=run.base_model)



def check_prompt(run_dir: Path) -> str | None:
    """The question every exported file is asked: the first user message of the run's own data, so the
    answers are in the model's field (a greeting is answered with far less confidence). None: the default."""
    try:
        import yaml

        from core.data import load_examples
        cfg = yaml.safe_load(RunDir(run_dir).config.read_text())
        data = load_examples(cfg["dataset"], cfg.get("dataset_format") or "auto", cfg.get("column_map") or None)
        for ex in data.examples[:50]:
            for m in ex.get("messages", []):
                if m.get("role") == "user" and isinstance(m.get("content"), str) and 0 < len(m["content"]) <= 500:
                    return m["content"]
    except Exception:  # any problem reading the data: the recipe's default greeting
        return None
    return None


def verify_export(path: Path) -> str | None:
    """None when manifest.json lists every file with the right size and checksum, else the reason."""
    try:
        files = read_manifest(path)
    except (OSError, ValueError, KeyError):
        return "no readable manifest.json (the export did not finish)"
    return manifest_problem(path, files, what="export")


def list_exports(ws: Workspace) -> list[dict]:
    """Finished exports, newest first (verify_export re-hashes one's files)."""
    out = []
    for p in sorted(ws.exports.iterdir() if ws.exports.is_dir() else [], key=lambda x: x.name):
        # an export is a folder Danlu renamed into place, never a link: one to / was walked whole (the
        # listing never came back), one to another folder was listed with that folder's size
        if p.is_symlink() or not p.is_dir() or p.name.startswith(".") or p.name.endswith(".partial"):
            continue
        meta = read_json(p / "danlu_export.json")
        manifest_ok = (p / MANIFEST).is_file()
        size = folder_bytes(p)
        row = dict(name=p.name, path=str(p), complete=manifest_ok, size_bytes=size,
                   created=meta.get("created", p.stat().st_mtime), base_model=meta.get("base_model"),
                   dtype=meta.get("dtype"), chat_template=meta.get("chat_template"),
                   smoke_test=meta.get("smoke_test", {}).get("status"), smoke_reply=meta.get("smoke_test", {}).get("reply"),
                   formats=meta.get("formats") or ["safetensors"], checks=meta.get("checks") or {})
        out.append(row)
    return sorted(out, key=lambda r: r["created"], reverse=True)


def read_merge_result(job: J.Job) -> dict:
    return read_json(RunDir(job.run_dir).result)


def model_params(ws: Workspace, base_model: str) -> int | None:
    """Parameter count of a base model without loading it: a preset's shape, else the safetensors headers of a
    local folder (exact), else its config.json."""
    from core.memory import Shape
    from core.models import resolve_model
    from core.presets import model_for
    preset = model_for(base_model)
    if preset is not None and preset.data.get("shape"):
        return Shape.from_dict(preset.data["shape"]).total_params
    try:
        ref = resolve_model(base_model, ws, builtin="path")
    except Exception:  # an unknown or offline hub id: no estimate, the page says so
        return None
    folder = Path(ref.source)
    if folder.is_dir():
        total = _safetensors_params(folder)
        if total:
            return total
        shape = Shape.from_hf_config(read_json(folder / "config.json"))
        return shape.total_params if shape else None
    return None


def _safetensors_params(folder: Path) -> int:
    import struct
    total = 0
    for f in folder.glob("*.safetensors"):
        try:
            with open(f, "rb") as fh:
                n = struct.unpack("<Q", fh.read(8))[0]
                header = json.loads(fh.read(min(n, 100_000_000)))
        except (OSError, ValueError, struct.error):
            continue
        for k, v in header.items():
            if k != "__metadata__":
                count = 1
                for d in v.get("shape", []):
                    count *= d
                total += count
    return total


def export_plan(ws: Workspace, job_or_run: str, formats, *, gpu: bool | None = None) -> dict:
    """What an export will cost before it starts: per format the expected size and time for this model
    (from its parameter count), the disk it needs at the peak, and the free disk space."""
    chosen = parse_formats(formats)
    run = resolve_trained_run(ws, job_or_run)
    params = model_params(ws, run.base_model)
    if gpu is None:
        from core.gpus import detect_gpus
        gpu = bool(detect_gpus())
    free = shutil.disk_usage(ws.exports if ws.exports.exists() else ws.root).free
    from core import gguf_tools
    tools = gguf_tools.status()
    out = dict(base_model=run.base_model, params=params, formats=chosen, free_bytes=free, gpu=gpu,
               tools_ready=tools["ready"], tools_note="" if tools["ready"] or not gguf_types(chosen) else gguf_tools.ONE_TIME_NOTE)
    if params:
        out["rows"] = estimates(chosen, params, gpu=gpu, cores=os.cpu_count() or 2)
        for row in out["rows"]:
            if row["format"] == "lora":  # the adapter is already on disk: its real size
                row["bytes"] = sum(p.stat().st_size for p in run.adapter_dir.iterdir() if p.is_file())
        out["need_bytes"] = scratch_bytes(chosen, params)
        out["enough_disk"] = free > out["need_bytes"]
    else:
        out.update(rows=[], need_bytes=None, enough_disk=None)
    return out
