"""The pieces of the training skeleton that need no training run: the method check before a job
starts, the start adapter's resolution, the method seam's batches, the fault hook and the equal
share of validation batches."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from core.config import TrainConfig
from core.errors import InputError
from tests.data.helpers import write_jsonl

PAIR = {"prompt": "What colour does the tin furnace burn?", "chosen": "Violet.", "rejected": "Green."}
CONVERSATION = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}


class TestMethodAgainstData:
    def test_dpo_and_orpo_refuse_a_dataset_without_pairs_naming_the_field(self, tmp_path):
        from core.method_check import method_problems
        data = write_jsonl(tmp_path / "chat.jsonl", [CONVERSATION] * 3)
        for method in ("dpo", "orpo"):
            problems = method_problems(TrainConfig(dataset=str(data), method=method))
            assert [p.where for p in problems] == ["method"]
            assert "pairs" in problems[0].message and "'messages' format" in problems[0].message
            assert "sft" in problems[0].hint  # what to do: a dataset of pairs, or method sft

    def test_pairs_fit_every_method(self, tmp_path):
        from core.method_check import method_problems
        data = write_jsonl(tmp_path / "pairs.jsonl", [PAIR] * 3)
        for method in ("sft", "dpo", "orpo"):
            assert method_problems(TrainConfig(dataset=str(data), method=method)) == []

    def test_the_launcher_refuses_before_creating_a_job(self, services, tmp_path):
        from core import launcher
        data = write_jsonl(tmp_path / "chat.jsonl", [CONVERSATION] * 3)
        cfg = TrainConfig(dataset=str(data), method="dpo")
        with pytest.raises(InputError) as e:
            launcher.submit_train(services.workspace, cfg, origin="shell")
        assert any(p.where == "method" for p in e.value.problems)
        assert services.store.list() == []

    def test_sft_on_pairs_learns_prompt_and_chosen(self):
        from core.engine.methods import as_conversation
        pair = {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "good"}],
                "rejected": [{"role": "assistant", "content": "bad"}]}
        assert as_conversation(pair) == {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "good"}]}
        assert as_conversation(CONVERSATION) is CONVERSATION


def fake_adapter(folder: Path, base: str = "builtin:danlu-tiny") -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    (folder / "danlu.json").write_text(json.dumps({"base_model": base}))
    return folder


class TestStartAdapter:
    def test_a_job_id_resolves_to_its_runs_adapter(self, services):
        from core import jobs as J
        from core.method_check import resolve_start_adapter
        run_dir = services.workspace.run_dir("20261202-000000-abcdef")
        fake_adapter(run_dir / "adapter")
        services.store.create(id="20261202-000000-abcdef", kind="train", name="sft", run_dir=str(run_dir))
        got = resolve_start_adapter(services.workspace, TrainConfig(dataset="x", start_adapter="20261202-000000-abcdef"))
        assert got == str((run_dir / "adapter").resolve()) and Path(got).is_absolute()
        assert J.JobStore(services.workspace.db_path).get("20261202-000000-abcdef") is not None

    def test_a_run_folder_or_an_adapter_folder(self, services, tmp_path):
        from core.method_check import resolve_start_adapter
        adapter = fake_adapter(tmp_path / "run" / "adapter")
        for given in (tmp_path / "run", adapter):
            assert resolve_start_adapter(services.workspace, TrainConfig(dataset="x", start_adapter=str(given))) == str(adapter)

    def test_a_bare_name_that_is_no_job_is_an_error_not_a_relative_path(self, services, tmp_path, monkeypatch):
        from core.method_check import resolve_start_adapter
        fake_adapter(tmp_path / "mine")
        monkeypatch.chdir(tmp_path)  # a folder of that name right here must not be picked up
        with pytest.raises(InputError) as e:
            resolve_start_adapter(services.workspace, TrainConfig(dataset="x", start_adapter="mine"))
        assert e.value.problems[0].where == "start_adapter" and "no job" in e.value.problems[0].message

    def test_an_adapter_of_another_base_model_is_refused(self, services, tmp_path):
        from core.method_check import resolve_start_adapter
        adapter = fake_adapter(tmp_path / "a", base="Qwen/Qwen2.5-0.5B-Instruct")
        with pytest.raises(InputError) as e:
            resolve_start_adapter(services.workspace, TrainConfig(dataset="x", start_adapter=str(adapter)))
        assert "Qwen/Qwen2.5-0.5B-Instruct" in e.value.problems[0].message

    def test_the_recipe_refuses_a_name_the_launcher_did_not_resolve(self):
        from core.recipes.train import start_adapter_dir
        with pytest.raises(InputError) as e:
            start_adapter_dir(TrainConfig(dataset="x", start_adapter="20261202-000000-abcdef"))
        assert e.value.problems[0].where == "start_adapter"


def fake_run(world=1, rank=0, **cfg):
    d = SimpleNamespace(rank=rank, world=world, device=torch.device("cpu"))
    return SimpleNamespace(d=d, step=0, trainable=[torch.nn.Parameter(torch.ones(3))],
                           cfg=SimpleNamespace(micro_batch_size=2, **cfg))


def test_faults_enter_through_the_step_hook(monkeypatch):
    from core.engine.faults import step_hook
    r = fake_run()
    monkeypatch.setenv("DANLU_FAULT", "nan@2,crash@3")
    step_hook(r, "before")  # step 1 is next: nothing yet
    assert torch.isfinite(r.trainable[0]).all()
    r.step = 1
    step_hook(r, "before")  # before step 2: the weights go NaN, as a real divergence's would
    assert torch.isnan(r.trainable[0]).all()
    step_hook(r, "after")
    r.step = 3
    with pytest.raises(RuntimeError, match="injected crash at step 3"):
        step_hook(r, "after")


def test_every_rank_runs_as_many_validation_batches_under_fsdp():
    from core.engine.train_log import rank_batches
    items = list(range(5))
    shares = [rank_batches(items, 2, SimpleNamespace(rank=k, world=2), same_count=True) for k in range(2)]
    assert [len(s) for s in shares] == [2, 2]  # 3 items and 2 items: two forwards each
    counted = sorted(i for s in shares for group, counts in s if counts for i in group)
    assert counted == items  # every item counted once; the filler batch is not
    plain = rank_batches(items, 2, SimpleNamespace(rank=1, world=2), same_count=False)
    assert [g for g, _ in plain] == [[1, 3]]


def test_pair_batches_carry_units_tokens_and_the_reference():
    from core.engine.methods import DPO, PairItem
    from core.engine.preference import EncodedPair
    items = [PairItem(EncodedPair([1, 2, 3], [-100, 2, 3], [1, 2], [-100, 2]), ref=(-1.0, -2.0)),
             PairItem(EncodedPair([1, 4], [-100, 4], [1, 5, 6], [-100, 5, 6]), ref=(-3.0, -4.0))]
    r = SimpleNamespace(tok=SimpleNamespace(pad_token_id=0))
    b = DPO().collate(r, items)
    assert b["input_ids"].shape == (4, 3) and b["n_units"] == 2 and b["n_tokens"] == 10
    assert b["ref"].tolist() == [-1.0, -3.0, -2.0, -4.0]  # chosen rows first, like the batch


def test_pairs_read_as_another_format_name_the_format_setting(tmp_path):
    """The demo template says dataset_format: messages; switching its method to dpo with a file of
    pairs must point at the format setting, not ask for another file."""
    from core.method_check import method_problems
    data = write_jsonl(tmp_path / "pairs.jsonl", [PAIR] * 3)
    problems = method_problems(TrainConfig(dataset=str(data), method="dpo", dataset_format="messages"))
    assert [p.where for p in problems] == ["dataset_format"] and "preference" in problems[0].hint
