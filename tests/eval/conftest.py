"""One trained demo job shared by the evaluation, export, chat and demo tests (training is the slow part)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_app


PROBES = ["What colour does the tin furnace burn?", "Where is the pine pill made?"]


@pytest.fixture(scope="package")
def trained(tmp_path_factory, demo_model_dir) -> dict:
    """{home, job_id, run_dir}: the demo template trained for 5 epochs (a fraction of the preset's 20;
    the fine-tuned answers already beat the untrained tiny model's by far)."""
    home = tmp_path_factory.mktemp("eval-home")
    (home / "models").mkdir()
    shutil.copytree(demo_model_dir, home / "models" / "danlu-tiny")
    cfg = home / "demo.yaml"
    r = run_app("copy-preset", "demo", cfg, home=home)
    assert r.returncode == 0, r.stderr
    data = yaml.safe_load(cfg.read_text())
    data.update(num_epochs=5, eval_steps=0, save_steps=40, gradient_checkpointing=False, probe_prompts=PROBES)
    cfg.write_text(yaml.safe_dump(data))
    r = run_app("train", cfg, "--name", "eval-fixture", home=home, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs = json.loads(run_app("jobs", "list", "--json", home=home).stdout)
    job = next(j for j in jobs if j["kind"] == "train")
    assert job["state"] == "succeeded"
    return dict(home=home, job_id=job["id"], run_dir=Path(job["run_dir"]))
