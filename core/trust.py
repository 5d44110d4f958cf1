"""The trust boundary: where a value from the browser may become a file read, a model load or a process.

Every core operation that takes a path, a model or a config from a person says where the value came
from, and checks it here, once:

    BROWSER  the page's widgets, Load config, a template, or any call to the app's HTTP API made
             without the page. Paths must lie in the workspace, the templates' sample data or a
             folder listed under `allowed_roots:` in <workspace>/settings.yaml (core.paths).
    SHELL    the local user's own command line (python app.py ...): any file the user can read.

    cfg = trust.check_config(cfg, ws, origin)          # every TrainConfig field marked path=... in its metadata
    model = trust.check_base_model(text, ws, origin)    # a model to train or tokenize with: presets, builtin:...,
                                                        #   hub ids; anything else is a folder inside the roots
    model = trust.check_model(text, ws, origin)         # the Chat tab's model box: export names and job ids too
    path = trust.check_file(text, ws, origin, field="dataset")
    path = trust.check_upload(text, ws, origin, field="marks file", suffixes=(".csv",), hint=...)
                                                        # an upload: check_file, then (browser) its name
    folder = trust.check_folder(text, ws, origin, field="adapter")

A refusal is an InputError that names the field, the allowed folders and how to add one; it never
quotes what an outside file holds, because the file is never opened. Pure Python.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from core.config_io import quoted
from core.errors import InputError, Problem
from core.messages import Msg
from core.models import check_model_field, is_local_model_text
from core.paths import SETTINGS_FILE, allowed_roots, check_suffix, looks_like_url, resolve_user_path

BROWSER = "browser"
SHELL = "shell"
ORIGINS = (BROWSER, SHELL)


def _origin(origin: str) -> str:
    if origin not in ORIGINS:  # a programming error: every caller must say where the value came from
        raise ValueError(f"origin must be one of {ORIGINS}, got {origin!r}")
    return origin


def path_fields() -> dict[str, str]:
    """TrainConfig fields that name something on disk, with their kind ("file" or "model")."""
    from core.config import FIELDS
    return {name: f.metadata["path"] for name, f in FIELDS.items() if f.metadata.get("path")}


def roots_hint(ws) -> Msg:
    """What to do about a refused path, naming every allowed folder and the settings file."""
    try:
        roots = ", ".join(str(r) for r in allowed_roots(ws))
    except InputError:
        roots = str(Path(ws.root))
    return Msg("trust.roots", roots=roots, settings=str(Path(ws.root) / SETTINGS_FILE))


def _with_roots(e: InputError, ws) -> InputError:
    """The same problems, each fix followed by the allowed folders (a refusal must say how to allow one)."""
    roots = roots_hint(ws)
    return InputError(problems=[dataclasses.replace(p, hint_msg=roots if p.hint_msg is None or p.hint_msg.code == "path.outside.hint"
                                                    else Msg("trust.hint_and_roots", hint=p.hint_msg, roots=roots))
                                for p in e.problems], title=e.title)


def check_file(text, ws, origin: str, *, field: str, must_exist: bool = True) -> str:
    """A file the page names (a dataset): inside the allowed roots for the browser."""
    return text if _origin(origin) == SHELL else _inside_roots(text, ws, field, must_exist, "file")


def _inside_roots(text, ws, field: str, must_exist: bool, kind: str) -> str:
    """core.paths.resolve_user_path's absolute path; its refusal names the allowed folders."""
    try:
        return str(resolve_user_path(text, ws, field=field, must_exist=must_exist, kind=kind))
    except InputError as e:
        raise _with_roots(e, ws) from None


def check_upload(text, ws, origin: str, *, field: str, suffixes: tuple[str, ...], hint: Msg) -> str:
    """A file the page uploaded (Load config's, a marks file): check_file first, then, from the browser,
    its name is one the upload takes (core.paths.check_suffix: the page's upload buttons take any file,
    Gradio refused others in English on every page); else what to do (`hint`)."""
    path = check_file(text, ws, origin, field=field)
    if _origin(origin) != SHELL:
        check_suffix(Path(path).name, suffixes, hint)
    return path


def check_folder(text, ws, origin: str, *, field: str) -> str:
    """A folder the page names (an adapter or run folder): inside the allowed roots for the browser."""
    return text if _origin(origin) == SHELL else _inside_roots(text, ws, field, True, "dir")


def check_model(text, ws, origin: str, *, field: str = "base_model") -> str:
    """A model the page names: presets, builtin:..., hub ids, export names and job ids pass as they
    are (their loaders look them up inside Danlu's own folders); a folder must be inside the roots."""
    if _origin(origin) == SHELL:
        return text
    try:
        return check_model_field(text, ws, field=field)
    except InputError as e:
        raise _with_roots(e, ws) from None


def check_base_model(text, ws, origin: str, *, field: str = "base_model", must_exist: bool = True) -> str:
    """A model to train or tokenize with: training takes no export names or job ids, so anything that
    is not a preset, builtin:... or hub id is a folder, and from the browser it must lie inside the roots."""
    if _origin(origin) == SHELL:
        return text
    t = (text or "").strip()
    if not (looks_like_url(t) or "\x00" in t or is_local_model_text(t, ws)):
        return text
    return _inside_roots(t, ws, field, must_exist, "dir")


def check_chat(model, adapter, ws, origin: str) -> tuple[str, str | None]:
    """A model to chat with and its adapter (a job id, or a run or adapter folder)."""
    if model is not None and not isinstance(model, str):  # the page's model box takes typed names: a direct
        # call sends any JSON there (5 raised AttributeError: a 500, a traceback)
        raise InputError(problems=[Problem("model", Msg("model.unknown", name=quoted(model)), Msg("model.unknown.hint"))])
    model = check_model((model or "").strip(), ws, origin, field="model")
    if adapter and ("/" in adapter or adapter.strip().startswith((".", "~"))):  # a folder, not a job id
        adapter = check_folder(adapter.strip(), ws, origin, field="adapter")
    return model, adapter


def check_adapter(text, ws, origin: str, *, field: str = "start_adapter", must_exist: bool = True) -> str:
    """An adapter to start from: a job id passes (it is looked up in the workspace's job table); a
    folder from the browser must lie inside the allowed roots."""
    t = (text or "").strip()
    if _origin(origin) == SHELL or not t or not ("/" in t or "\\" in t or t.startswith((".", "~")) or "\x00" in t):
        return text
    return _inside_roots(t, ws, field, must_exist, "dir")


CHECKS = {"file": check_file, "model": check_base_model, "adapter": check_adapter}


def check_values(values: dict, ws, origin: str) -> None:
    """The path-valued settings in a mapping (a loaded config file, before it fills the page): raises
    with every one that points outside the allowed folders (whether or not the file exists)."""
    if _origin(origin) == SHELL:
        return
    problems = []
    for name, kind in path_fields().items():
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            CHECKS[kind](value if isinstance(value, str) else repr(value), ws, origin, field=name, must_exist=False)
        except InputError as e:
            problems += e.problems
    if problems:
        raise InputError(problems=problems, title=Msg("trust.config_file_title"))


def check_config(cfg, ws, origin: str, *, must_exist: bool = True):
    """Every path-valued setting of a config (path_fields()), all problems at once. Returns a copy
    with the browser's paths made absolute; the shell's config comes back unchanged.
    must_exist=False: only where the paths point is checked (a config saved to download)."""
    if _origin(origin) == SHELL:
        return cfg
    problems: list[Problem] = []
    changes = {}
    for name, kind in path_fields().items():
        value = getattr(cfg, name)
        if not (value or "").strip():
            continue  # "no dataset chosen" / "no base model chosen" are the settings check's to say
        try:
            changes[name] = CHECKS[kind](value, ws, origin, field=name, must_exist=must_exist)
        except InputError as e:
            problems += e.problems
    if problems:
        raise InputError(problems=problems, title=Msg("trust.settings_title"))
    return dataclasses.replace(cfg, **changes)
