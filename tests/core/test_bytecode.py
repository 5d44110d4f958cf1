"""core.bytecode: a job process gets a bytecode folder in the workspace exactly when the installed
packages have no compiled bytecode and Python would not write any (container images)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import bytecode


@pytest.fixture
def package(tmp_path):
    """A package `fakepkg` on a search path of its own, with no __pycache__."""
    root = tmp_path / "site"
    (root / "fakepkg").mkdir(parents=True)
    (root / "fakepkg" / "__init__.py").write_text("VALUE = 42\n")
    return root


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    return dict(env, **extra)


def test_present_bytecode_needs_nothing(package):
    subprocess.run([sys.executable, "-c", "import fakepkg"], env=clean_env(PYTHONPATH=str(package)), check=True)
    assert list((package / "fakepkg" / "__pycache__").glob("*.pyc"))
    assert not bytecode.missing("fakepkg", [str(package)], env={"PYTHONDONTWRITEBYTECODE": "1"})


def test_writable_folder_needs_nothing(package):
    assert not bytecode.missing("fakepkg", [str(package)], env={})  # Python writes it on the first import


def test_no_bytecode_and_no_writing_is_missing(package, monkeypatch):
    assert bytecode.missing("fakepkg", [str(package)], env={"PYTHONDONTWRITEBYTECODE": "1"})
    monkeypatch.setattr(bytecode.os, "access", lambda path, mode: False)  # a root-owned image folder
    assert bytecode.missing("fakepkg", [str(package)], env={})


def test_unknown_module_is_not_missing():
    assert not bytecode.missing("no_such_module_danlu", env={"PYTHONDONTWRITEBYTECODE": "1"})


def test_job_env_keeps_bytecode_in_the_workspace(package, tmp_path, monkeypatch):
    monkeypatch.setattr(bytecode, "missing", lambda **kw: True)
    env = clean_env(PYTHONPATH=str(package), PYTHONDONTWRITEBYTECODE="1")
    out, note = bytecode.job_env(env, tmp_path / "cache")
    folder = tmp_path / "cache" / "bytecode"
    assert out["PYTHONPYCACHEPREFIX"] == str(folder) and "PYTHONDONTWRITEBYTECODE" not in out
    assert str(folder) in note
    # a process started with it writes its bytecode there, and nothing beside the package's source
    subprocess.run([sys.executable, "-c", "import fakepkg; assert fakepkg.VALUE == 42"], env=out, check=True)
    assert list(folder.rglob("fakepkg/__init__*.pyc"))
    assert not (package / "fakepkg" / "__pycache__").exists()


def test_a_prefix_the_user_set_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(bytecode, "missing", lambda **kw: True)
    env = {"PYTHONPYCACHEPREFIX": "/somewhere/else"}
    assert bytecode.job_env(env, tmp_path) == (env, None)


def test_nothing_changes_where_bytecode_exists(tmp_path):
    import torch
    source = Path(torch.__file__)
    assert (source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc").exists(), \
        "this environment's torch was installed with its bytecode (pip's default)"
    out, note = bytecode.job_env(clean_env(PYTHONDONTWRITEBYTECODE="1"), tmp_path)
    assert note is None and "PYTHONPYCACHEPREFIX" not in out
