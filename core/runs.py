"""Find a finished training run from what a person typed: a job id (or its unique prefix), or a
run directory inside the workspace. Evaluation, export and chat all start from here.

    run = resolve_trained_run(ws, "20261127-1942")   # -> TrainedRun(run_dir, adapter_dir, job, info)

Pure Python (no torch).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import jobs as J
from core.errors import InputError, NotFound, Problem
from core.rundir import RunDir, adapter_info_path, read_json
from core.workspace import Workspace


@dataclass(frozen=True)
class TrainedRun:
    run_dir: Path
    adapter_dir: Path
    job: J.Job | None
    info: dict  # adapter/danlu.json: base_model, quantization, chat_template, trust_remote_code

    @property
    def base_model(self) -> str:
        return self.info.get("base_model", "")

    @property
    def job_id(self) -> str:
        return self.job.id if self.job else self.run_dir.name


def _job_for_dir(ws: Workspace, run_dir: Path) -> J.Job | None:
    train = [j for j in J.JobStore(ws.db_path).list(kind="train") if Path(j.run_dir).resolve() == run_dir]
    return train[0] if train else None  # newest first: a resumed run's latest attempt


def resolve_trained_run(ws: Workspace, ref: str) -> TrainedRun:
    """A training job id or run directory -> its run dir and finished adapter, or InputError saying why not.
    An eval or merge job id stands for the training run it came from."""
    ref = (ref or "").strip()
    if not ref or "\x00" in ref:
        raise InputError(problems=[Problem("run", "no run given", "give a training job id (python app.py jobs list) or its run folder")])
    store = J.JobStore(ws.db_path)
    job = store.find(ref) if "/" not in ref else None
    if job is not None:
        if job.kind != "train" and job.parent_id:
            parent = store.get(job.parent_id)
            job = parent if parent is not None else job
        if job.kind != "train":
            raise InputError(problems=[Problem("run", f"job {job.id} is a {job.kind} job, not a training job",
                                               "give the id of a training job")])
        run_dir = Path(job.run_dir).resolve()
    else:
        path = Path(ref).expanduser()
        run_dir = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not run_dir.is_relative_to(ws.root.resolve()) and "/" not in ref:  # a mistyped job id
            raise NotFound(f"no training job or run folder called {ref!r}", "see `python app.py jobs list` for job ids")
        if not run_dir.is_relative_to(ws.root.resolve()):  # before any look at it: no probing outside
            raise InputError(problems=[Problem("run", f"{run_dir} is outside the workspace {ws.root}",
                                               "give a job id, or a run folder under the workspace's runs/")])
        if not run_dir.is_dir():
            raise NotFound(f"no training job or run folder called {ref!r}", "see `python app.py jobs list` for job ids")
        job = _job_for_dir(ws, run_dir)
    adapter = RunDir(run_dir).adapter
    if not (adapter / "adapter_model.safetensors").is_file():
        state = f" (job {job.id} is {J.STATE_WORDS[job.state].lower()})" if job else ""
        raise InputError(problems=[Problem("run", f"{run_dir.name} has no finished adapter{state}",
                                           "wait for training to finish, or resume it; a stopped run keeps only checkpoints")],
                         title="This run cannot be used yet")
    info = read_json(adapter_info_path(adapter))
    return TrainedRun(run_dir=run_dir, adapter_dir=adapter, job=job, info=info)


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def check_adapter_dir(adapter_dir: str | Path) -> Path:
    """An adapter folder must hold PEFT safetensors; pickle weights are refused (they can run code when loaded)."""
    adapter_dir = Path(adapter_dir).expanduser().resolve()
    problems = []
    if not adapter_dir.is_dir():
        problems.append(Problem("adapter", f"folder not found: {adapter_dir}", "give a training job id, its run folder, or an adapter folder"))
    elif not (adapter_dir / "adapter_config.json").is_file():
        problems.append(Problem("adapter", f"{adapter_dir} has no adapter_config.json", "point to a LoRA adapter folder"))
    elif not (adapter_dir / "adapter_model.safetensors").is_file():
        pickles = [p.name for p in adapter_dir.iterdir() if p.suffix in PICKLE_SUFFIXES]
        problems.append(Problem("adapter", f"{adapter_dir} has no adapter_model.safetensors"
                                + (f" (only pickle files: {', '.join(pickles)})" if pickles else ""),
                                "Danlu loads safetensors only, because pickle files can run code"))
    if problems:
        raise InputError(problems=problems, title="The adapter cannot be used")
    return adapter_dir
