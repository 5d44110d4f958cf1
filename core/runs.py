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
from core.paths import is_dir
from core.messages import Msg
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
        raise InputError(problems=[Problem("run", Msg("run.none"), Msg("run.none.hint"))])
    store = J.JobStore(ws.db_path)
    job = store.find(ref) if "/" not in ref else None
    if job is not None:
        if job.kind != "train" and job.parent_id:
            parent = store.get(job.parent_id)
            job = parent if parent is not None else job
        if job.kind != "train":
            raise InputError(problems=[Problem("run", Msg("run.not_train", id=job.id, kind=job.kind), Msg("run.not_train.hint"))])
        run_dir = Path(job.run_dir).resolve()
    else:
        path = Path(ref).expanduser()
        run_dir = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not run_dir.is_relative_to(ws.root.resolve()) and "/" not in ref:  # a mistyped job id
            raise NotFound(Msg("run.unknown", ref=repr(ref)), Msg("run.unknown.hint"))
        if not run_dir.is_relative_to(ws.root.resolve()):  # before any look at it: no probing outside
            raise InputError(problems=[Problem("run", Msg("run.outside", path=str(run_dir), workspace=str(ws.root)),
                                               Msg("run.outside.hint"))])
        if not is_dir(run_dir):
            raise NotFound(Msg("run.unknown", ref=repr(ref)), Msg("run.unknown.hint"))
        job = _job_for_dir(ws, run_dir)
    adapter = RunDir(run_dir).adapter
    if not (adapter / "adapter_model.safetensors").is_file():
        missing = Msg("run.no_adapter_state", name=run_dir.name, id=job.id, state=J.state_word(job.state)) if job \
            else Msg("run.no_adapter", name=run_dir.name)
        raise InputError(problems=[Problem("run", missing, Msg("run.no_adapter.hint"))], title=Msg("run.not_ready_title"))
    info = read_json(adapter_info_path(adapter))
    if not isinstance(info.get("base_model"), str) or not info["base_model"].strip():
        # without it the base model was "", a folder: the process's working directory, outside the workspace
        raise InputError(problems=[Problem("run", Msg("run.no_base_model", path=str(adapter_info_path(adapter))),
                                           Msg("run.no_base_model.hint"))], title=Msg("run.not_ready_title"))
    return TrainedRun(run_dir=run_dir, adapter_dir=adapter, job=job, info=info)


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


def check_adapter_dir(adapter_dir: str | Path) -> Path:
    """An adapter folder must hold PEFT safetensors; pickle weights are refused (they can run code when loaded)."""
    adapter_dir = Path(adapter_dir).expanduser().resolve()
    problems = []
    if not is_dir(adapter_dir):
        problems.append(Problem("adapter", Msg("any.folder_not_found_at", path=str(adapter_dir)), Msg("run.adapter_missing.hint")))
    elif not (adapter_dir / "adapter_config.json").is_file():
        problems.append(Problem("adapter", Msg("run.no_adapter_config", path=str(adapter_dir)), Msg("run.no_adapter_config.hint")))
    elif not (adapter_dir / "adapter_model.safetensors").is_file():
        pickles = [p.name for p in adapter_dir.iterdir() if p.suffix in PICKLE_SUFFIXES]
        missing = Msg("run.only_pickles", path=str(adapter_dir), files=", ".join(pickles)) if pickles \
            else Msg("run.no_safetensors", path=str(adapter_dir))
        problems.append(Problem("adapter", missing, Msg("run.safetensors_only.hint")))
    if problems:
        raise InputError(problems=problems, title=Msg("run.adapter_title"))
    return adapter_dir
