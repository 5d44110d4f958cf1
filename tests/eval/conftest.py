"""One trained demo job shared by the evaluation, export, chat and demo tests (training is the slow part)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import train_template


PROBES = ["What colour does the tin furnace burn?", "Where is the pine pill made?"]


@pytest.fixture(scope="package")
def trained(tmp_path_factory, demo_model_dir) -> dict:
    """{home, job_id, run_dir}: the demo template trained for 5 epochs (a fraction of the preset's 20;
    the fine-tuned answers already beat the untrained tiny model's by far)."""
    run = train_template(tmp_path_factory, demo_model_dir, "demo", "eval-fixture", num_epochs=5, eval_steps=0,
                         save_steps=40, gradient_checkpointing=False, probe_prompts=PROBES)
    home, job = run["home"], run["job"]
    return dict(home=home, job_id=job["id"], run_dir=Path(job["run_dir"]))
