"""Checks of a training method against its data and its starting adapter, before a job starts (the
launcher runs them beside config validation) and again inside the recipe for a hand-started run.

    data_problems("dpo", "messages")        # -> [Problem("method", ...)]: dpo and orpo need pairs
    method_problems(cfg)                   # the same, reading the dataset's format from its first record
    resolve_start_adapter(ws, cfg)         # -> absolute adapter folder ("" for none), or InputError
    start_adapter_problems(ws, cfg)        # the same refusal as problems (the page's settings check)

sft on a file of pairs trains on prompt + chosen (core.engine.methods.as_conversation): no problem.
Pure Python (no torch).
"""
from __future__ import annotations

from pathlib import Path

from core.errors import InputError, Problem
from core.messages import Msg
from core.paths import is_file

PAIR_METHODS = ("dpo", "orpo")


def data_problems(method: str, fmt: str | None) -> list[Problem]:
    if method in PAIR_METHODS and fmt not in (None, "preference"):
        return [Problem("method", Msg("method.needs_pairs", method=method, format=fmt),
                        Msg("method.needs_pairs.hint", method=method))]
    return []


def method_problems(cfg) -> list[Problem]:
    """The dataset's format (as training will read it) against cfg.method; [] when the file cannot be
    read here (config validation names a missing file; the recipe reports an unreadable one)."""
    if cfg.method not in PAIR_METHODS:
        return []
    path = Path(cfg.dataset).expanduser()
    if not is_file(path):
        return []
    from core.data.check import resolve_format
    try:
        fmt, _ = resolve_format(path, cfg.dataset_format, cfg.column_map)
    except (OSError, ValueError):
        return []
    if fmt is None and cfg.dataset_format not in ("auto", "preference"):
        fmt = cfg.dataset_format
    if fmt != "preference" and cfg.dataset_format not in ("auto", "preference"):
        try:  # pairs read as another format: the format setting is what to change, not the file
            detected, _ = resolve_format(path, "auto", cfg.column_map)
        except (OSError, ValueError):
            detected = None
        if detected == "preference":
            return [Problem("dataset_format", Msg("method.format_not_pairs", method=cfg.method, format=cfg.dataset_format),
                            Msg("method.format_not_pairs.hint"))]
    return data_problems(cfg.method, fmt)


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.startswith((".", "~")) or Path(text).is_absolute()


def _adapter_in(folder: Path) -> Path | None:
    """The adapter of a run folder (RUN/adapter) or the folder itself when it is one."""
    from core.rundir import RunDir
    for cand in (folder, RunDir(folder).adapter):
        if is_file(cand / "adapter_config.json"):
            return cand
    return None


def resolve_start_adapter(ws, cfg) -> str:
    """cfg.start_adapter as the absolute path of the adapter folder the run starts from ("" for none).
    A job id is looked up in the workspace's job table; a path names a run folder or an adapter
    folder. A bare name that is no job id is an error, never a path relative to wherever the
    process happens to run."""
    text = (cfg.start_adapter or "").strip()
    if not text:
        return ""
    from core import jobs as J
    from core.runs import check_adapter_dir
    from core.rundir import RunDir, adapter_info_path, read_json
    if _looks_like_path(text):
        folder = Path(text).expanduser().resolve()
        adapter = _adapter_in(folder) or folder
    else:
        store = J.JobStore(ws.db_path)
        job = store.find(text)
        if job is not None and job.kind != "train" and job.parent_id:  # an eval or export of a run stands for it
            job = store.get(job.parent_id) or job
        if job is None:
            raise InputError(problems=[Problem("start_adapter", Msg("start.unknown", ref=repr(text)),
                                               Msg("start.unknown.hint"))],
                             title=Msg("start.title"))
        adapter = RunDir(job.run_dir).adapter
    try:
        adapter = check_adapter_dir(adapter)
    except InputError as e:
        raise InputError(problems=[Problem("start_adapter", p.msg, p.hint_msg) for p in e.problems],
                         title=Msg("start.title")) from None
    base = read_json(adapter_info_path(adapter)).get("base_model")
    if base and base != cfg.base_model:
        raise InputError(problems=[Problem("start_adapter", Msg("start.other_base", path=str(adapter), base=base,
                                                                 model=cfg.base_model),
                                           Msg("start.other_base.hint", base=base))], title=Msg("start.title"))
    return str(adapter)


def start_adapter_problems(ws, cfg) -> list[Problem]:
    """What resolve_start_adapter refuses, as problems: the page's settings check says it as Start would
    (an unknown job id, a 100,000-letter paste among them), instead of "all settings are valid"."""
    try:
        resolve_start_adapter(ws, cfg)
    except InputError as e:
        return e.problems
    return []
