"""Issue 18's "must show" on a CPU: the preference template trains, its run's metrics feed the Train
tab's margin and accuracy plots, and `python app.py eval JOB --json` finds the held-out preference
accuracy above the starting model's. (About a minute: 44 DPO steps on the tiny model, trained by the
session's preference_run fixture, which tests/recipes/test_preference_train.py reads too; then the
evaluation job.)"""
from __future__ import annotations

import json

from tests.conftest import run_app


def test_the_preference_template_trains_and_evaluates_above_its_starting_point(preference_run):
    home, job = preference_run["home"], preference_run["job"]
    assert preference_run["preset"]["method"] == "dpo"

    from core.progress import read_metrics
    from webui.tabs.train_plots import pref_frames
    margin, accuracy = pref_frames(read_metrics(job["run_dir"]))
    assert margin is not None and accuracy is not None  # the names training writes are the ones the plot reads
    assert {"train", "validation"} <= set(margin.series) and accuracy["pref_accuracy"].dropna().between(0, 1).all()

    r = run_app("eval", job["id"], "--json", "--max-samples", "8", "--max-new-tokens", "8", home=home, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    p = json.loads(r.stdout)["preference"]
    assert p["pairs"] >= 10
    assert p["tuned_accuracy"] > p["base_accuracy"] and p["tuned_margin"] > p["base_margin"], p
