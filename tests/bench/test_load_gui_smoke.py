"""bench/load_gui.py end to end, small: a real GUI server, a real demo job unloaded and loaded, a few
simulated tabs and one uploader. Asserts that the benchmark works and that no request failed - never
on speed (this machine is shared; the figures come from the full run, see SECURITY.md)."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_load_benchmark_runs_and_no_request_fails(tmp_path):
    out = tmp_path / "load.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "load_gui.py"), "--pollers", "4", "--uploaders", "1",
                        "--steps", "60", "--reps", "1", "--no-check", "--home", str(tmp_path / "ws"), "--out", str(out)],
                       cwd=str(REPO), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    report = json.loads(out.read_text())
    s = report["summary"]
    assert s["errors"] == 0, report["runs"][-1]["load"]["error_samples"]
    assert {"poll", "dataset_check", "upload"} <= set(s["latency"])
    assert all(s["latency"][k]["n"] > 0 for k in ("poll", "dataset_check", "upload"))
    assert s["unloaded_tokens_per_s"] > 0 and s["loaded_tokens_per_s"] > 0
    assert [run["label"] for run in report["runs"]] == ["unloaded-0", "loaded-0"]
    assert all(run["steps"] == 60 for run in report["runs"])
