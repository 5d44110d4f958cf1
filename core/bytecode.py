"""Compiled bytecode for Danlu's job processes, kept in the workspace when the installed packages
have none.

A recipe imports torch, transformers, peft and bitsandbytes: thousands of modules. Python keeps
each module's compiled bytecode beside its source (`__pycache__/`) and reuses it on the next
start. An installation that has none and where none will be written (`pip install --no-compile`
into a folder the user may not write, or `PYTHONDONTWRITEBYTECODE=1`, both common in container
images) compiles every module again at every start: seconds of every job's start-up, each time.
Then Danlu points its job processes at a bytecode folder of its own (`PYTHONPYCACHEPREFIX`, under
the workspace's cache): the first start writes it, later ones read it. Nothing outside the
workspace is written, and a PYTHONPYCACHEPREFIX the user set is left alone.
"""
from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

PROBE = "torch"  # the largest import of every recipe: where it has bytecode, the rest has too


def missing(module: str = PROBE, search: list[str] | None = None, env: dict | None = None) -> bool:
    """True when `module`'s package has no compiled bytecode and Python will not write any."""
    env = os.environ if env is None else env
    spec = importlib.machinery.PathFinder.find_spec(module, search)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False  # not installed (the recipe says so itself) or not plain Python
    source = Path(spec.origin)  # where Python looks by default, whatever this process's own prefix
    pyc = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
    if pyc.exists():
        return False
    if env.get("PYTHONDONTWRITEBYTECODE"):
        return True
    folder = pyc.parent if pyc.parent.exists() else pyc.parent.parent
    return not os.access(folder, os.W_OK)


def job_env(env: dict, cache_root: Path) -> tuple[dict, str | None]:
    """`env` for a job process, with a bytecode folder of Danlu's own where the packages have none;
    (env, a line for the job's log, or None when nothing changed)."""
    if env.get("PYTHONPYCACHEPREFIX") or not missing(env=env):
        return env, None
    folder = cache_root / "bytecode"
    out = dict(env, PYTHONPYCACHEPREFIX=str(folder))
    out.pop("PYTHONDONTWRITEBYTECODE", None)  # the folder is the workspace's own: no package is touched
    return out, (f"[danlu] the installed Python packages carry no compiled bytecode: it is kept in {folder} "
                 "(the first start writes it, later starts read it)")
