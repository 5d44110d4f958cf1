"""The recipe's own guards for the job system: free space before the run and before each save, and
a loss curve that continues cleanly after a resume."""
import json
import os

import pytest

torch = pytest.importorskip("torch")
from core.engine import checkpoint as ckpt  # noqa: E402
from core.recipes import train  # noqa: E402
from core.engine.common import DiskFull  # noqa: E402


@pytest.fixture
def model():
    return torch.nn.Linear(256, 256)  # 65 792 trainable numbers: a checkpoint of ~0.8 MB + 50 MB margin


def test_enough_space_passes(tmp_path, model, monkeypatch):
    monkeypatch.delenv("DANLU_FAULT", raising=False)
    monkeypatch.setattr(ckpt, "free_bytes", lambda path: 10 * 2**30)
    train.check_disk(tmp_path, model, 0)


def test_too_little_space_stops_before_training_or_saving(tmp_path, model, monkeypatch):
    monkeypatch.delenv("DANLU_FAULT", raising=False)
    monkeypatch.setattr(ckpt, "free_bytes", lambda path: 20 * 2**20)
    with pytest.raises(DiskFull) as e:
        train.check_disk(tmp_path, model, 0)
    assert "Only 20 MB are free" in e.value.message and "Resume" in e.value.hint


def test_injected_disk_full_fires_from_its_step_on(tmp_path, model, monkeypatch):
    monkeypatch.setattr(ckpt, "free_bytes", lambda path: 10 * 2**30)
    monkeypatch.setenv("DANLU_FAULT", "enospc@4")
    train.check_disk(tmp_path, model, 0)
    train.check_disk(tmp_path, model, 2)
    with pytest.raises(DiskFull):
        train.check_disk(tmp_path, model, 4)
    monkeypatch.setenv("DANLU_FAULT", "enospc@0")  # "before start"
    with pytest.raises(DiskFull):
        train.check_disk(tmp_path, model, 0)


def test_rewind_keeps_the_curve_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 8)] + [json.dumps({"step": 4, "eval_loss": 0.5})]
    path.write_text("\n".join(lines) + "\n" + '{"step": 8, "lo')  # a torn last line from a killed attempt
    train.rewind_jsonl(path, 4)
    kept = [json.loads(x) for x in path.read_text().splitlines()]
    assert [(m["step"], "eval_loss" in m) for m in kept] == [(1, False), (2, False), (3, False), (4, False), (4, True)]
    aside = [json.loads(x)["step"] for x in (tmp_path / "metrics.after-checkpoint.jsonl").read_text().splitlines()]
    assert aside == [5, 6, 7]


def test_rewind_without_a_checkpoint_starts_the_curve_again(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n')
    train.rewind_jsonl(path, 0)
    assert path.read_text() == ""
    train.rewind_jsonl(tmp_path / "absent.jsonl", 0)  # nothing to do, no error


def test_rewind_applies_to_the_probe_answers_too(tmp_path):
    path = tmp_path / "probes.jsonl"
    path.write_text("".join(json.dumps({"step": s, "prompt": "p", "answer": "a"}) + "\n" for s in (2, 4, 6)))
    train.rewind_jsonl(path, 4)
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [2, 4]
    assert json.loads((tmp_path / "probes.after-checkpoint.jsonl").read_text())["step"] == 6


def test_a_failure_while_setting_up_the_ranks_is_recorded_with_its_words(tmp_path, monkeypatch):
    """A bad DANLU_DIST_TIMEOUT_MIN fails in setup_dist, before the body: the job must still say
    which variable and what to do (it said only 'Rank 1 exited with code 1')."""
    from core.engine.recipe import run_recipe
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("DANLU_DIST_TIMEOUT_MIN", "abc")
    with pytest.raises(SystemExit) as ended:  # worded: exit code 1 without a traceback
        run_recipe(lambda ctx: pytest.fail("the body ran without its ranks"), tmp_path)
    assert ended.value.code == 1
    error = json.loads((tmp_path / "error.json").read_text())
    assert error["rank"] == 1 and error["message_msg"]["code"] == "knob.bad_number"
    assert "DANLU_DIST_TIMEOUT_MIN" in error["message"] and "DANLU_DIST_TIMEOUT_MIN" in error["hint"]


@pytest.mark.parametrize("person_set", [None, ("PYTORCH_CUDA_ALLOC_CONF", "max_split_size_mb:128"),
                                        ("PYTORCH_ALLOC_CONF", "expandable_segments:False")])
def test_a_recipe_asks_for_growing_allocator_segments_unless_the_person_chose(tmp_path, monkeypatch, person_set):
    """Fixed blocks left 4.4 GiB unused when a 112k-token row ran out of a 24 GiB cap on an H200; a
    person's own allocator configuration is kept as written."""
    from core.engine.recipe import run_recipe
    for name in ("PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_ALLOC_CONF"):
        monkeypatch.delenv(name, raising=False)
    if person_set:
        monkeypatch.setenv(*person_set)
    seen = {}
    run_recipe(lambda ctx: seen.update(cuda=os.environ.get("PYTORCH_CUDA_ALLOC_CONF"),
                                       new=os.environ.get("PYTORCH_ALLOC_CONF")) or 0, tmp_path, distributed=False)
    if person_set is None:
        assert seen == {"cuda": "expandable_segments:True", "new": None}
    else:
        assert seen[{"PYTORCH_CUDA_ALLOC_CONF": "cuda", "PYTORCH_ALLOC_CONF": "new"}[person_set[0]]] == person_set[1]
        assert "expandable_segments:True" not in seen.values()
