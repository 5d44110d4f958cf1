"""bench/memory_peak.py on a hand-made allocator history: the peak, what existed before recording,
and the grouping of what was alive at the peak by the frame that made it."""
import json
import subprocess
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
MIB = 2 ** 20


def frame(path, line, name):
    return dict(filename=path, line=line, name=name)


def snapshot():
    loss = [frame("/repo/core/engine/methods.py", 90, "loss"), frame("/x/site-packages/torch/nn/functional.py", 10, "f")]
    kernel = [frame("/tmp/torchinductor_root/ab/cabc.py", 300, "call")]

    def ev(action, addr, size, frames=()):
        return dict(action=action, addr=addr, size=size, frames=list(frames))
    trace = [ev("alloc", 1, 100 * MIB, loss), ev("alloc", 2, 50 * MIB, kernel), ev("free_requested", 2, 50 * MIB),
             ev("free_completed", 2, 50 * MIB), ev("alloc", 3, 30 * MIB, kernel), ev("alloc", 4, 40 * MIB, kernel),
             ev("free_completed", 1, 100 * MIB), ev("alloc", 5, 10 * MIB, loss)]
    # alive at the end: 3, 4, 5 (80 MiB) and 1,000 MiB made before recording (the weights)
    blocks = [dict(size=s * MIB, state="active_allocated") for s in (30, 40, 10, 1000)] + [dict(size=7 * MIB, state="inactive")]
    return dict(device_traces=[trace], segments=[dict(device=0, blocks=blocks)])


def test_peak_and_what_was_alive_then():
    from memory_peak import live_at_peak, report
    before, peak, live = live_at_peak(snapshot())
    assert before == 1000 * MIB
    assert peak == (1000 + 170) * MIB  # after allocs 1, 3, 4 (2 was freed before 3)
    assert sorted(live) == [1, 3, 4]
    text = report(snapshot())
    lines = text.splitlines()
    assert "peak 1.14 GiB = 0.98 GiB allocated before recording + 0.17 GiB" in lines[0]
    assert "core/engine/methods.py:90 loss <- core/engine/methods.py:90 loss" not in text
    assert lines[2].split()[:2] == ["0.098", "1"] and "core/engine/methods.py:90 loss" in lines[2]
    assert lines[3].split()[:2] == ["0.068", "2"] and "torchinductor" in lines[3]


def test_the_command_line_reads_the_json_snapshot(tmp_path):
    path = tmp_path / "snap.json"
    path.write_text(json.dumps(snapshot()))
    r = subprocess.run([sys.executable, str(REPO / "bench" / "memory_peak.py"), str(path), "--top", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\n") == 3 and "methods.py:90" in r.stdout


def test_no_recording_without_a_gpu_even_when_asked(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from core.engine import memory_trace
    monkeypatch.setenv("DANLU_MEMORY_SNAPSHOT", str(tmp_path / "snap.json"))
    cpu = SimpleNamespace(cuda=False, main=True)
    assert memory_trace.start(cpu) is False
    memory_trace.after_step(cpu, memory_trace.STEPS)
    assert not (tmp_path / "snap.json").exists()
