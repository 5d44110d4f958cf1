"""Danlu's preference maths against TRL's own code, on the same batch and the same weights.

TRL (a test dependency only, pinned in requirements-test.txt) is the reference implementation the
issue names. The tiny demo model gets a LoRA adapter (built by TRL's trainer from the same
LoraConfig) whose weights are perturbed, so the policy (adapter on) differs from the reference
(adapter off), and everything is compared within 1e-4 relative:

- DPO (trl.DPOTrainer, loss_type "sigmoid"): TRL's tokenisation of the pairs (prompt_ids +
  chosen_ids / rejected_ids from its prepared dataset) equals encode_pair's; per pair, the policy's
  summed answer log-probs, the reference's (TRL's compute_ref_log_probs: adapter switched off), and
  the chosen/rejected rewards as TRL's _compute_loss logs them; on the whole batch, the loss.
- ORPO (trl.experimental.orpo.ORPOTrainer; TRL 1.x moved ORPO to trl.experimental): TRL's
  get_batch_loss_metrics on the same token ids gives per pair the mean per-token log-probs and the
  rewards, and on the batch the odds-ratio term of the loss. Danlu's ORPO loss differs from TRL's
  on purpose in one place: its NLL term is the chosen ANSWER's mean token loss (as supervised
  training learns answers only), while TRL's experimental trainer averages the NLL over the prompt's
  tokens as well (concatenated_forward: labels = input_ids where attention_mask is 1). So the
  odds-ratio term is compared, and the NLL term is pinned by the chosen log-prob comparison. The
  tiny model's answers are improbable, where log(1 - p) is nearly 0, so TRL's odds_ratio_loss is
  also compared directly on mean log-probs of a trained model's range (both branches of log1mexp).

The deliberate-failure check (a wrong beta on one side) is in the last test: parity is not vacuous.
"""
from __future__ import annotations

import warnings

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from core.engine import preference as P  # noqa: E402

BETA = 0.1
RTOL = 1e-4

EXAMPLES = [
    {"prompt": [{"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What colour is the sky on a clear day?"}],
     "chosen": [{"role": "assistant", "content": "It is blue."}],
     "rejected": [{"role": "assistant", "content": "The sky has no colour at all, it is purely an illusion of the eye."}]},
    {"prompt": [{"role": "user", "content": "Say hello."}],
     "chosen": [{"role": "assistant", "content": "Hello! How can I help?"}],
     "rejected": [{"role": "assistant", "content": "No."}]},
    {"prompt": [{"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": "An apple."},
                {"role": "user", "content": "Another one, please."}],
     "chosen": [{"role": "assistant", "content": "A pear."}],
     "rejected": [{"role": "assistant", "content": "An apple again."}]},
]


def close(a, b, rtol=RTOL):
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return bool(torch.all((a - b).abs() <= rtol * torch.maximum(a.abs(), b.abs()).clamp(min=1e-6)))


def perturb(model, seed=0):
    """Random LoRA weights (PEFT starts B at zero, which would make policy == reference)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def lora():
    from peft import LoraConfig
    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")


def base_model(demo_model_dir):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(str(demo_model_dir), dtype=torch.float32)


@pytest.fixture(scope="module")
def dpo(demo_model_dir, tok, tmp_path_factory):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer
    args = DPOConfig(output_dir=str(tmp_path_factory.mktemp("dpo")), beta=BETA, loss_type=["sigmoid"], use_cpu=True,
                     report_to="none", max_length=None, per_device_train_batch_size=len(EXAMPLES), seed=0,
                     bf16=False)  # float32 throughout (TRL defaults to bf16 autocast, also on CPU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = DPOTrainer(model=base_model(demo_model_dir), args=args, processing_class=tok,
                             train_dataset=Dataset.from_list(EXAMPLES), peft_config=lora())
    perturb(trainer.model)
    return trainer


def trl_dpo_step(trainer, rows):
    """TRL's own loss and logged metrics for these prepared rows."""
    batch = trainer.data_collator(rows)
    for logged in trainer._metrics.values():
        logged.clear()
    with torch.no_grad():
        loss = trainer._compute_loss(trainer.model, batch, return_outputs=False)
    mode = "train" if trainer.model.training else "eval"
    m = {k: v[-1] for k, v in trainer._metrics[mode].items()}
    with torch.no_grad():
        ref_c, ref_r = trainer.compute_ref_log_probs(trainer.model, batch)
    return float(loss), m, ref_c, ref_r


def danlu_dpo(model, pairs, pad_id, beta=BETA):
    batch = P.collate_pairs(pairs, pad_id)
    b = len(pairs)
    with torch.no_grad():
        logp, n = P.sequence_logps(model, batch, chunk=5)
        with model.disable_adapter():
            ref, _ = P.sequence_logps(model, batch, chunk=5)
    loss, rc, rr = P.dpo_loss(logp[:b], logp[b:], ref[:b], ref[b:], beta)
    return dict(loss=loss, chosen=logp[:b], rejected=logp[b:], ref_c=ref[:b], ref_r=ref[b:], rc=rc, rr=rr)


def test_tokens_match_trl(dpo, tok):
    for i, ex in enumerate(EXAMPLES):
        row = dpo.train_dataset[i]
        pair = P.encode_pair(tok, ex, max_len=4096)
        for side in ("chosen", "rejected"):
            ids, labels = getattr(pair, f"{side}_ids"), getattr(pair, f"{side}_labels")
            assert ids == row["prompt_ids"] + row[f"{side}_ids"]
            assert [t for t in labels if t != P.IGNORE] == row[f"{side}_ids"]


def test_dpo_matches_trl(dpo, tok):
    pairs = [P.encode_pair(tok, ex, max_len=4096) for ex in EXAMPLES]
    ours = danlu_dpo(dpo.model, pairs, tok.pad_token_id)
    assert not close(ours["chosen"], ours["ref_c"], 1e-3), "the perturbed adapter must make policy != reference"
    for i in range(len(EXAMPLES)):  # one pair at a time: TRL logs batch means
        _, m, ref_c, ref_r = trl_dpo_step(dpo, [dpo.train_dataset[i]])
        assert close(ours["chosen"][i], m["logps/chosen"]) and close(ours["rejected"][i], m["logps/rejected"]), (i, m)
        assert close(ours["ref_c"][i], ref_c[0]) and close(ours["ref_r"][i], ref_r[0]), (ours, ref_c, ref_r, m)
        assert close(ours["rc"][i], m["rewards/chosen"]) and close(ours["rr"][i], m["rewards/rejected"]), (i, m)
    loss, m, _, _ = trl_dpo_step(dpo, [dpo.train_dataset[i] for i in range(len(EXAMPLES))])
    assert close(ours["loss"].mean(), loss), (float(ours["loss"].mean()), loss)
    margin, acc = P.pair_stats(ours["rc"], ours["rr"])
    assert close(margin, m["rewards/margins"]) and close(acc, m["rewards/accuracies"])


# ------------------------------------------------------------------------------------------------ ORPO

@pytest.fixture(scope="module")
def orpo(demo_model_dir, tok, tmp_path_factory):
    from datasets import Dataset
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer
    args = ORPOConfig(output_dir=str(tmp_path_factory.mktemp("orpo")), beta=BETA, use_cpu=True, report_to="none",
                      max_length=4096, per_device_train_batch_size=len(EXAMPLES), seed=0,
                      bf16=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = ORPOTrainer(model=base_model(demo_model_dir), args=args, processing_class=tok,
                              train_dataset=Dataset.from_list(EXAMPLES), peft_config=lora())
    perturb(trainer.model, seed=1)
    return trainer


def trl_orpo_batch(pairs, pad_id):
    """Danlu's token ids in the layout TRL's ORPO concatenated_forward reads."""
    out = {}
    for side in ("chosen", "rejected"):
        rows = [(getattr(p, f"{side}_ids"), getattr(p, f"{side}_labels")) for p in pairs]
        width = max(len(ids) for ids, _ in rows)
        out[f"{side}_input_ids"] = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in rows])
        out[f"{side}_attention_mask"] = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
        out[f"{side}_labels"] = torch.tensor([lab + [P.IGNORE] * (width - len(lab)) for _, lab in rows])
    return out


def test_orpo_matches_trl(orpo, tok):
    pairs = [P.encode_pair(tok, ex, max_len=4096) for ex in EXAMPLES]
    b = len(pairs)
    with torch.no_grad():
        logp, n = P.sequence_logps(orpo.model, P.collate_pairs(pairs, tok.pad_token_id), chunk=5)
    loss, rc, rr = P.orpo_loss(logp[:b], logp[b:], n[:b], n[b:], BETA)
    mean_c = logp[:b] / n[:b]
    for i in range(b):
        with torch.no_grad():
            _, m = orpo.get_batch_loss_metrics(orpo.model, trl_orpo_batch([pairs[i]], tok.pad_token_id))
        assert close(mean_c[i], m["logps/chosen"]) and close(logp[b + i] / n[b + i], m["logps/rejected"]), (i, m)
        assert close(rc[i], m["rewards/chosen"]) and close(rr[i], m["rewards/rejected"]), (i, m)
    with torch.no_grad():
        trl_loss, m = orpo.get_batch_loss_metrics(orpo.model, trl_orpo_batch(pairs, tok.pad_token_id))
    odds_term_trl = float(trl_loss) - m["nll_loss"]          # -mean(beta * log sigmoid(log odds ratio))
    odds_term_ours = (loss + mean_c).mean()                   # our loss minus our NLL term (-mean_c)
    assert close(odds_term_ours, odds_term_trl), (float(odds_term_ours), odds_term_trl)
    assert close(odds_term_ours, -BETA * m["log_odds_ratio"])


def test_orpo_odds_ratio_matches_trl_near_certain_answers(orpo):
    """The tiny model's answers are improbable (mean log-prob about -7), where log(1 - p) is almost 0;
    TRL's odds_ratio_loss itself on mean log-probs of trained models (both branches of log1mexp)."""
    mc = torch.tensor([-0.01, -0.3, -0.69, -0.8, -2.0, -0.05])
    mr = torch.tensor([-0.5, -0.02, -1.5, -0.7, -0.9, -6.0])
    n_c, n_r = torch.tensor([3, 7, 1, 20, 5, 2]), torch.tensor([4, 1, 9, 2, 5, 3])
    loss, rc, rr = P.orpo_loss(mc * n_c, mr * n_r, n_c, n_r, BETA)
    terms, trl_rc, trl_rr, _, _ = orpo.odds_ratio_loss(mc, mr)   # terms = beta * log sigmoid(log odds ratio)
    assert close(loss + mc, -terms) and close(rc, trl_rc) and close(rr, trl_rr)


def test_parity_can_fail(dpo, orpo, tok):
    """A wrong beta on Danlu's side is caught: the comparisons above are not vacuous."""
    pairs = [P.encode_pair(tok, ex, max_len=4096) for ex in EXAMPLES]
    wrong = danlu_dpo(dpo.model, pairs, tok.pad_token_id, beta=BETA * 1.01)
    loss, m, _, _ = trl_dpo_step(dpo, [dpo.train_dataset[i] for i in range(len(EXAMPLES))])
    assert not close(wrong["loss"].mean(), loss)
    assert not close(wrong["rc"].mean(), m["rewards/chosen"])
    b = len(pairs)
    with torch.no_grad():
        logp, n = P.sequence_logps(orpo.model, P.collate_pairs(pairs, tok.pad_token_id))
        trl_loss, m = orpo.get_batch_loss_metrics(orpo.model, trl_orpo_batch(pairs, tok.pad_token_id))
    wrong_loss, _, _ = P.orpo_loss(logp[:b], logp[b:], n[:b], n[b:], BETA * 1.01)
    assert not close((wrong_loss + logp[:b] / n[:b]).mean(), float(trl_loss) - m["nll_loss"])
    mc, mr = torch.tensor([-0.3, -0.8]), torch.tensor([-0.02, -0.7])
    wrong_odds = (mc - mr) - (P.log1mexp(mc) - P.log1mexp(mr)) * 0.99   # a slip in the odds, not in beta
    assert not close(-BETA * torch.nn.functional.logsigmoid(wrong_odds), -orpo.odds_ratio_loss(mc, mr)[0])


def test_trl_is_a_test_dependency_only():
    """Danlu runs without TRL: no module of the app imports it (only tests/ and bench/ do)."""
    from tests.test_layout import REPO, imports_of, python_files
    users = [p for p in python_files("core", "cli", "webui") if any(m.split(".")[0] == "trl" for m in imports_of(p))]
    assert not users and "trl" not in (REPO / "requirements.txt").read_text()
