"""bench/bigger.py (issue 20's GPU rows) checked on a CPU with the demo model and tiny shapes: it
runs Danlu's recipe as Start does, writes the pinned format as it goes, and keeps an earlier call's
rows; bench/bigger_data.py's rows have the stated length distribution and its steps are the recipe's."""
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
PINNED = {"mode", "stack", "micro_batch", "seq", "gpus", "tokens_per_s", "peak_gib"}


@pytest.mark.slow
def test_restart_rows_the_pinned_format_and_what_fits(home, tmp_path):
    """Restart rows; the earlier call's rows kept, its memory-plan pair untouched (a comparison's two
    rows come from one call, and the peer is not in this one); the capped fit-24 runs recorded."""
    earlier = tmp_path / "earlier.json"
    old_row = dict(mode="long-16k", stack="danlu", micro_batch=1, seq=16384, gpus=1, tokens_per_s=1.0, peak_gib=1.0)
    pair = [dict(mode="memory-plan", stack=s, micro_batch=4, seq=2048, gpus=1, tokens_per_s=t, peak_gib=1.0)
            for s, t in (("danlu", 2.0), ("unsloth", 1.0))]
    earlier.write_text(json.dumps(dict(card="unknown", rows=[old_row, *pair])))
    out = tmp_path / "bigger.json"
    r = subprocess.run([sys.executable, str(REPO / "bench" / "bigger.py"), "--model", str(home / "models" / "danlu-tiny"),
                        "--work", str(tmp_path / "work"), "--out", str(out), "--smoke", "--modes", "restart,fit-24",
                        "--merge", str(earlier)], cwd=str(REPO), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert set(res) == {"card", "rows"}
    rows = {(x["mode"], x["stack"], x.get("run")): x for x in res["rows"]}
    assert set(rows) == {("long-16k", "danlu", None), ("memory-plan", "danlu", None), ("memory-plan", "unsloth", None),
                         ("restart", "danlu", 1), ("restart", "danlu", 2)}
    assert [x for x in res["rows"] if x["mode"] == "memory-plan"] == pair
    for run in (1, 2):
        row = rows[("restart", "danlu", run)]
        assert set(row) == PINNED - {"tokens_per_s"} | {"run", "seconds_to_first_loss"} and row["seconds_to_first_loss"] > 0
    details = json.loads((tmp_path / "bigger-details.json").read_text())
    assert details["runs"][0]["memory_plan"]["mode"] == "auto"
    # the peer is skipped on a CPU (said so); Danlu's capped run still ran, the cap a no-op without a GPU
    fits = {f["stack"]: f for f in details["fit_24gib"]}
    assert fits["danlu"]["fits"] is True and fits["danlu"]["cap_gib"] == 24
    assert fits["unsloth"]["fits"] is None and "smoke" in fits["unsloth"]["error"]  # not known, not "no"


def test_real_data_lengths_and_the_recipes_steps(home, tmp_path):
    from bigger_data import danlu_steps, make_rows
    stats = make_rows(tmp_path / "rows.jsonl", tokens=60_000)
    assert 200 <= stats["median"] <= 450 and stats["p90"] > 2 * stats["median"] and stats["tokens"] >= 60_000
    steps = danlu_steps(str(home / "models" / "danlu-tiny"), tmp_path / "rows.jsonl", mb=2, seq=512, n=4)
    assert len(steps) == 4
    for st in steps:
        assert st["tokens"] <= 2 * 512 and len(st["ids"]) == len(st["labels"]) == len(st["pos"])
        assert st["pos"].count(0) >= 2  # several documents per row, each from position 0


@pytest.mark.slow
def test_the_70b_group_runs_danlu_at_two_micro_batches_on_the_given_checkpoint(home, tmp_path):
    """The 70b group trains the checkpoint given as --model-70b (here the demo model), not --model,
    at mb 1 and 2; a missing checkpoint is an error in the details, not a crash."""
    out = tmp_path / "bigger.json"
    argv = [sys.executable, str(REPO / "bench" / "bigger.py"), "--model", str(tmp_path / "no-such-8b"),
            "--work", str(tmp_path / "work"), "--out", str(out), "--smoke", "--modes", "70b"]
    r = subprocess.run(argv + ["--model-70b", str(home / "models" / "danlu-tiny")], cwd=str(REPO),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = json.loads(out.read_text())["rows"]
    assert sorted((x["stack"], x["micro_batch"]) for x in rows) == [("danlu", 1), ("danlu", 2)]
    assert all(set(x) == PINNED and x["mode"] == "70b" and x["tokens_per_s"] > 0 for x in rows)
    details = json.loads((tmp_path / "bigger-details.json").read_text())
    assert {d["name"] for d in details["runs"]} == {"danlu-70b-mb1", "danlu-70b-mb2", "unsloth-70b-mb1", "unsloth-70b-mb2"}
    missing = subprocess.run(argv + ["--model-70b", str(tmp_path / "nothing")], cwd=str(REPO),
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 0
    errors = json.loads((tmp_path / "bigger-details.json").read_text())["errors"]
    assert any(e["group"] == "70b" and "no checkpoint" in e["error"] for e in errors)


def test_a_longer_row_is_not_tried_where_a_shorter_one_ran_out_of_memory(monkeypatch, tmp_path):
    """The fit group spends no GPU time on a length that cannot fit: after an out-of-memory at 80k,
    that stack's 96k is written down as not fitting without a run; the other stack still runs."""
    import bigger
    ran = []

    def fake_danlu(b, name, mb, seq, **kw):
        ran.append(("danlu", seq, kw["cap"]))
        return dict(status="OOM", error="CUDA out of memory") if seq > 65536 else dict(status="ok", tokens_per_s=1.0, peak_gib=2.0)

    def fake_harness(b, name, mbs, seq, impl, **kw):
        ran.append((impl, seq, kw["cap"]))
        return [dict(status="ok", tokens_per_s=1.0, peak_gib=3.0)]

    monkeypatch.setattr(bigger, "danlu", fake_danlu)
    monkeypatch.setattr(bigger, "harness_runs", fake_harness)
    b = SimpleNamespace(args=SimpleNamespace(fit_cap=24.0, fit_runs="danlu@65536,danlu@81920,danlu@98304,unsloth@98304,danlu@98304@80"),
                        details={})
    bigger.fit(b)
    assert [r[:2] for r in ran] == [("danlu", 65536), ("danlu", 81920), ("unsloth", 98304), ("danlu", 98304)]
    assert ran[0][2] == 240 and ran[2][2] > ran[1][2] > 240  # longer rows get more time
    fits = [(f["stack"], f["seq"], f["fits"]) for f in b.details["fit_24gib"]]
    assert fits == [("danlu", 65536, True), ("danlu", 81920, False), ("danlu", 98304, False), ("unsloth", 98304, True)]
    assert "81920 tokens per row did not fit" in b.details["fit_24gib"][2]["error"]
    # a run that names its own cap is tried under it (another card), whatever failed under 24 GiB
    assert [(f["seq"], f["cap_gib"]) for f in b.details["fit_80gib"]] == [(98304, 80.0)]


def test_a_fit_run_cut_by_the_deadline_after_its_first_step_fits_that_step():
    """A 256k Danlu run on the H200 was cut after 579 s and its record was lost: whether even one step
    fitted was not known. A record cut after a step says so; an out-of-memory at any step does not fit."""
    import bigger
    cut = dict(status="timeout", losses=[12.58], peak_gib=61.2, error="cut by the deadline")
    assert {k: bigger.fit_record("danlu", 262144, 80, cut)[k] for k in ("fits", "steps_done", "peak_gib")} == \
        dict(fits=True, steps_done=1, peak_gib=61.2)
    late_oom = dict(status="failed", losses=[12.58], error="CUDA out of memory. Tried to allocate 7.00 GiB")
    assert bigger.fit_record("danlu", 262144, 80, late_oom)["fits"] is False
    assert bigger.fit_record("danlu", 262144, 80, dict(status="timeout", losses=[]))["fits"] is None


def test_the_70b_lowest_group_runs_danlu_at_lowest_memory_beside_the_peer_and_keeps_the_pinned_rows(monkeypatch, tmp_path):
    """70b-lowest runs Danlu with memory_plan=lowest at mb 1 and 2 and the peer in the same call, and
    writes them to the details only: the pinned "70b" rows (the auto plan's, from another call) stay."""
    import bigger
    ran = []

    def fake_danlu(b, name, mb, seq, sets=(), **kw):
        ran.append(("danlu", mb, tuple(sets), kw["model"]))
        return dict(status="ok", tokens_per_s=100.0 * mb, peak_gib=40.0 + mb)

    def fake_harness(b, name, mbs, seq, impl, **kw):
        ran.append((impl, tuple(mbs), kw["model"]))
        return [dict(status="ok", micro_batch=mb, tokens_per_s=90.0 * mb, peak_gib=39.0) for mb in mbs]

    monkeypatch.setattr(bigger, "danlu", fake_danlu)
    monkeypatch.setattr(bigger, "harness_runs", fake_harness)
    (tmp_path / "m70").mkdir()
    (tmp_path / "m70" / "config.json").write_text("{}")
    b = SimpleNamespace(args=SimpleNamespace(model_70b=str(tmp_path / "m70")), details={}, rows=[], save=lambda: None)
    bigger.big70_lowest(b)
    m = str(tmp_path / "m70")
    assert ran == [("danlu", 1, ("memory_plan=lowest",), m), ("danlu", 2, ("memory_plan=lowest",), m), ("unsloth", (1, 2), m)]
    assert [(r["stack"], r["micro_batch"], r["tokens_per_s"]) for r in b.details["70b_lowest"]] == \
        [("danlu", 1, 100.0), ("danlu", 2, 200.0), ("unsloth", 1, 90.0), ("unsloth", 2, 180.0)]
    assert b.rows == []
