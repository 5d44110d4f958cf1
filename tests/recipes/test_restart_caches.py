"""Quick restarts: torch.compile's caches live in the workspace, not in /tmp, so a second run of
the same shape (even after a reboot) finds its compiled kernels (issue 20)."""
import os

from core.engine.speed import keep_compile_caches


def test_compile_caches_go_to_the_workspace(tmp_path, monkeypatch):
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.delenv(var, raising=False)
    run_dir = tmp_path / "ws" / "runs" / "20261202-000000-000001"
    run_dir.mkdir(parents=True)
    keep_compile_caches(run_dir)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "ws" / "cache" / "compile" / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "ws" / "cache" / "compile" / "triton")
    assert (tmp_path / "ws" / "cache" / "compile" / "triton").is_dir()


def test_a_cache_folder_the_user_chose_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/else")
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    keep_compile_caches(tmp_path / "loose-run")  # a run folder outside a workspace: DANLU_HOME's cache
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == "/somewhere/else"
    assert os.environ["TRITON_CACHE_DIR"] == str(tmp_path / "home" / "cache" / "compile" / "triton")
