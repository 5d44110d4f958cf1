"""The GPU benchmark script runs end to end on the CPU with a tiny shape (so the lead's H100 run works first time)."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ENV_DEFAULTS, REPO

pytestmark = pytest.mark.slow


def test_bench_gpu_merge_chat_tiny(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, **ENV_DEFAULTS)
    r = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_merge_chat.py"), "--tiny", "--out", str(out),
                        "--workdir", str(tmp_path / "w"), "--repeats", "1", "--new-tokens", "16", "--prompt-words", "20"],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["shape"] == "tiny" and res["build_base"]["built"] and res["build_adapter"]["lora_params"] > 0
    merge = res["merge"]
    assert merge["returncode"] == 0 and merge["recipe"]["smoke_test"]["status"] == "passed"
    assert merge["recipe"]["peak_host_rss_gib"] > 0 and merge["wall_s"] > 0
    chat = res["chat"]
    for path in ("plain", "worker", "engine"):
        assert chat[path]["new_tokens"] == 16, (path, chat[path])
        assert chat[path]["tokens_per_s"] > 0 and chat[path]["ttft_s"] > 0
    assert chat["worker_vs_plain"]["tokens_per_s_ratio"] > 0
    assert "worker/plain" in r.stdout
    assert not (tmp_path / "w" / "export").exists()  # the export is removed unless --keep-export
