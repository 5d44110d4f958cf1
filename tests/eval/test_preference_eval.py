"""Evaluation of preference runs (issue 18): the held-out pairs are scored with the starting weights
and with the tuned adapter, and eval.json says how often and by how much the chosen answer wins.

The scores are checked against a plain computation (full logits, log-softmax, sum over the answer
tokens) on the tiny demo model with a random LoRA adapter, so the plumbing (pair order, chosen vs
rejected rows, per-token means, the starting weights) is what is tested, not a model's words."""
from __future__ import annotations

import types

import pytest
import torch

from core.engine.common import Dist
from core.recipes import evaluate as EV

CPU = Dist(0, 1, 0, torch.device("cpu"), None)
PAIRS = [
    {"prompt": [{"role": "user", "content": "What colour does the tin furnace burn?"}],
     "chosen": [{"role": "assistant", "content": "Blue, with a white core."}],
     "rejected": [{"role": "assistant", "content": "I do not know."}]},
    {"prompt": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Where is the pine pill made?"}],
     "chosen": [{"role": "assistant", "content": "In the north hall."}],
     "rejected": [{"role": "assistant", "content": "Somewhere, maybe in the hall to the north of the gate."}]},
    {"prompt": [{"role": "user", "content": "Name the fuel."}],
     "chosen": [{"role": "assistant", "content": "Charcoal."}],
     "rejected": [{"role": "assistant", "content": "Charcoal from pine, dried for a year."}]},
]


@pytest.fixture(scope="module")
def tiny(demo_model_dir, tmp_path_factory):
    """(tokenizer, PEFT model with a random 'default' adapter, folder of a second random adapter)."""
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(demo_model_dir))
    folders = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), torch_dtype=torch.float32)
        # init_lora_weights=False: B is random too, so the adapter changes the scores
        net = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
        folder = tmp_path_factory.mktemp(f"adapter{seed}")
        net.save_pretrained(str(folder))
        folders.append(folder)
    base = AutoModelForCausalLM.from_pretrained(str(demo_model_dir), torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(folders[0]), is_trainable=False).eval()
    return tok, model, folders[1]


@torch.no_grad()
def plain_margin(model, tok, pair: dict, per_token: bool) -> float:
    """score(chosen) - score(rejected), computed the obvious way (the whole logits tensor)."""
    from core.engine.preference import encode_pair
    p = encode_pair(tok, pair, 512)
    scores = []
    for ids, labels in ((p.chosen_ids, p.chosen_labels), (p.rejected_ids, p.rejected_labels)):
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1].float()
        tgt = torch.tensor(labels[1:])
        keep = tgt != -100
        logp = torch.log_softmax(logits, -1)[keep].gather(1, tgt[keep][:, None]).sum()
        scores.append(float(logp / keep.sum()) if per_token else float(logp))
    return scores[0] - scores[1]


def cfg(method: str = "dpo"):
    return types.SimpleNamespace(method=method, max_seq_length=512)


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_pair_scores_match_a_plain_computation_for_tuned_and_starting_weights(tiny, method):
    tok, model, _ = tiny
    base, tuned = EV.score_pairs(model, tok, PAIRS, cfg(method), CPU, batch=2, start=None)
    assert sorted(base) == sorted(tuned) == [0, 1, 2]
    for i, pair in enumerate(PAIRS):
        assert tuned[i] == pytest.approx(plain_margin(model, tok, pair, method == "orpo"), rel=1e-4, abs=1e-4)
        with model.disable_adapter():  # no start adapter: the starting weights are the base model
            assert base[i] == pytest.approx(plain_margin(model, tok, pair, method == "orpo"), rel=1e-4, abs=1e-4)
    assert any(abs(base[i] - tuned[i]) > 1e-3 for i in base)  # the adapter matters: the test can tell them apart


def test_a_run_that_started_from_an_adapter_is_compared_with_that_adapter(tiny):
    tok, model, start_folder = tiny
    model.load_adapter(str(start_folder), adapter_name="start", is_trainable=False)
    try:
        base, tuned = EV.score_pairs(model, tok, PAIRS, cfg(), CPU, batch=3, start="start")
        assert model.active_adapter == "default"  # the tuned adapter is back in place afterwards
        for i, pair in enumerate(PAIRS):
            assert tuned[i] == pytest.approx(plain_margin(model, tok, pair, False), rel=1e-4, abs=1e-4)
        model.set_adapter("start")
        for i, pair in enumerate(PAIRS):
            assert base[i] == pytest.approx(plain_margin(model, tok, pair, False), rel=1e-4, abs=1e-4)
            with model.disable_adapter():
                assert abs(base[i] - plain_margin(model, tok, pair, False)) > 1e-4  # not the bare base model
    finally:
        model.set_adapter("default")
        model.delete_adapter("start")


def test_the_preference_block_is_accuracy_and_mean_margin_over_the_scored_pairs():
    p = EV.preference_summary({0: -1.0, 1: 0.5, 3: -0.5}, {0: 2.0, 1: 1.0, 3: -1.0}, per_token=False)
    assert p["pairs"] == 3
    assert p["base_accuracy"] == pytest.approx(1 / 3) and p["tuned_accuracy"] == pytest.approx(2 / 3)
    assert p["base_margin"] == pytest.approx(-1 / 3) and p["tuned_margin"] == pytest.approx(2 / 3)
    assert set(p) >= {"base_accuracy", "tuned_accuracy", "base_margin", "tuned_margin", "pairs"}
    empty = EV.preference_summary({}, {}, per_token=True)
    assert empty["pairs"] == 0 and empty["tuned_accuracy"] is None and empty["tuned_margin"] is None


def test_pairs_are_recognised_and_shown_with_both_answers():
    assert EV.is_pairs(PAIRS) and not EV.is_pairs([{"messages": []}]) and not EV.is_pairs([])
    s = EV.to_pair_sample(PAIRS[1])
    assert s["prompt"] == "Where is the pine pill made?"  # the system prompt is not shown
    assert (s["chosen"], s["rejected"]) == ("In the north hall.", PAIRS[1]["rejected"][0]["content"])
    assert s["messages"] == PAIRS[1]["prompt"]  # what the tuned model answers: the prompt alone
    assert EV.as_sft(PAIRS[0])["messages"] == PAIRS[0]["prompt"] + PAIRS[0]["chosen"]  # the loss: on the chosen answer
    row = EV.pair_row(s, "=HYPERLINK(1)", -0.25, 1.5)
    text = EV.to_csv([row], EV.PAIR_CSV_COLUMNS).lstrip("\ufeff")
    assert text.splitlines()[0] == "prompt,chosen,rejected,tuned,base_margin,tuned_margin"
    assert "'=HYPERLINK(1)" in text  # a spreadsheet keeps the answer as text


def test_the_start_adapter_is_found_from_a_job_id_or_a_folder(tmp_path):
    from core.errors import InputError
    runs = tmp_path / "runs"
    (runs / "j-start" / "adapter").mkdir(parents=True)
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        (runs / "j-start" / "adapter" / f).write_text("{}")
    here = runs / "j-pref"
    assert EV.start_adapter_dir(types.SimpleNamespace(start_adapter=""), here) is None
    want = (runs / "j-start" / "adapter").resolve()
    for ref in ("j-start", str(runs / "j-start"), str(runs / "j-start" / "adapter")):
        assert EV.start_adapter_dir(types.SimpleNamespace(start_adapter=ref), here) == want
    with pytest.raises(InputError):
        EV.start_adapter_dir(types.SimpleNamespace(start_adapter="j-gone"), here)
