"""Preference runs on the page (issue 18): the Evaluate tab's preference block and pair columns, the
Train tab's reward-margin and preference-accuracy plots (from a hand-written metrics.jsonl), the
Method choice in words, the start_adapter picker and the memory estimate of a pair step."""
from __future__ import annotations

import json
import re

import gradio as gr
import pytest

from core import jobs as J
from core.memory import sequences_per_example
from webui import fields
from webui.i18n import CODES, tr
from webui.tabs import evaluate_tab as ev
from webui.tabs import hyperparams_tab as hp
from webui.tabs import train_plots as tp
from webui.tabs import train_tab as tt

PREF_REPORT = dict(
    run_dir="x", eval_loss=1.25, base_eval_loss=2.5, perplexity=3.49, base_perplexity=12.18, metrics={}, n_samples=2,
    preference=dict(base_accuracy=0.5, tuned_accuracy=0.875, base_margin=-0.125, tuned_margin=2.375, pairs=8),
    samples=[dict(prompt="Colour of the tin furnace?", chosen="Blue.", rejected="Red.", reference="Blue.",
                  tuned="Blue, mostly.", base_margin=-0.5, tuned_margin=1.25),
             dict(prompt="Fuel?", chosen="Charcoal.", rejected="Oil.", reference="Charcoal.", tuned="Charcoal.",
                  base_margin=0.25, tuned_margin=None)],
    notes=[])


def finished_job(gui, name: str):
    run_dir = gui.ws.runs / name
    run_dir.mkdir(parents=True)
    job = gui.store.create(kind="train", name=name, run_dir=str(run_dir))
    for state in (J.STARTING, J.RUNNING, J.SUCCEEDED):
        gui.store.transition(job.id, state)
    return job, run_dir


# ---- Evaluate tab ---------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", CODES)
def test_the_evaluate_tab_shows_accuracy_and_margin_before_and_after_and_the_pair_columns(gui, lang):
    job, run_dir = finished_job(gui, "pref")
    (run_dir / "eval.json").write_text(json.dumps(PREF_REPORT))
    summary, update, _csv, _probes, _intro = ev.show_results(gui, lang, job.id)
    table = update["value"]
    for key in ("ev.pref_accuracy", "ev.pref_margin", "ev.pairs", "ev.pref_explain"):
        assert tr(key, lang) in summary
    assert "| 50% | 88% |" in summary and "| -0.125 | 2.375 |" in summary and "(8 " in summary
    assert list(table.columns) == [tr(k, lang) for k in ev.PAIR_TABLE_KEYS]
    assert list(table.iloc[0])[:4] == ["Colour of the tin furnace?", "Blue.", "Red.", "Blue, mostly."]
    assert table.iloc[0, 4] == -0.5 and table.iloc[0, 5] == 1.25


def test_a_supervised_evaluation_keeps_its_columns_and_scores(gui):
    job, run_dir = finished_job(gui, "sft")
    s = dict(prompt="p", reference="r", base="b", tuned="r", base_rouge_l=0.0, tuned_rouge_l=1.0, base_bleu=0.0,
             tuned_bleu=1.0, base_exact=False, tuned_exact=True)
    (run_dir / "eval.json").write_text(json.dumps(dict(eval_loss=1.0, base_eval_loss=2.0, perplexity=2.7, n_samples=1,
                                                        metrics=dict(base={}, tuned={}), samples=[s])))
    summary, update, _csv, _probes, _intro = ev.show_results(gui, "en", job.id)
    assert list(update["value"].columns) == [tr(k, "en") for k in ev.TABLE_KEYS]
    assert tr("ev.pref_accuracy", "en") not in summary and "ROUGE-L" in summary


@pytest.mark.parametrize("pairs", [False, True])
def test_the_answers_to_compare_share_the_tables_width(gui, pairs):
    """A long base answer took the whole width and the fine-tuned answer sat off the right edge, to be
    scrolled to (a walk in Japanese): the answer columns share most of the width, the scores the rest."""
    job, run_dir = finished_job(gui, "pref" if pairs else "sft")
    s = dict(prompt="p", reference="r", base="b " * 500, tuned="r", base_rouge_l=0.0, tuned_rouge_l=1.0, base_bleu=0.0,
             tuned_bleu=1.0, base_exact=False, tuned_exact=True)
    report = PREF_REPORT if pairs else dict(n_samples=1, metrics=dict(base={}, tuned={}), samples=[s])
    (run_dir / "eval.json").write_text(json.dumps(report))
    keys = ev.PAIR_TABLE_KEYS if pairs else ev.TABLE_KEYS
    widths = dict(zip(keys, (float(w.rstrip("%")) for w in ev.show_results(gui, "ja", job.id)[1]["column_widths"])))
    assert len(widths) == len(keys) and sum(widths.values()) <= 100.5
    assert widths["ev.col.tuned"] >= 15 and widths["ev.col.tuned"] == max(widths.values())


def test_with_no_run_chosen_the_evaluate_tab_asks_for_one_and_a_chosen_run_says_it_is_not_evaluated_yet(gui):
    # no finished run to choose (a fresh workspace) is not "this run has not been evaluated yet"
    assert ev.show_results(gui, "ja", None)[0] == tr("ev.no_run", "ja")
    job, _ = finished_job(gui, "plain")
    assert ev.show_results(gui, "ja", job.id)[0] == tr("ev.none_yet", "ja")


@pytest.mark.parametrize("lang", CODES)
def test_the_evaluate_intro_names_what_the_chosen_runs_evaluation_measures(gui, lang):
    """The intro named ROUGE and BLEU for a DPO run too, whose evaluation is accuracy and margin."""
    dpo, dpo_dir = finished_job(gui, "dpo-run")
    (dpo_dir / "config.yaml").write_text("method: dpo\n")  # not evaluated yet: its method says so
    scored, scored_dir = finished_job(gui, "scored-pairs")
    (scored_dir / "eval.json").write_text(json.dumps(PREF_REPORT))  # no config left: its evaluation says so
    sft, sft_dir = finished_job(gui, "sft-run")
    (sft_dir / "config.yaml").write_text("method: sft\n")
    not_yet = ev.show_results(gui, lang, dpo.id)
    assert not_yet[4] == tr("ev.intro_pref", lang)
    assert list(not_yet[1]["value"].columns) == [tr(k, lang) for k in ev.PAIR_TABLE_KEYS]  # its empty table's columns too
    assert ev.show_results(gui, lang, scored.id)[4] == tr("ev.intro_pref", lang)
    assert ev.show_results(gui, lang, sft.id)[4] == tr("ev.intro", lang)
    assert ev.show_results(gui, lang, None)[4] == tr("ev.intro", lang)
    assert "ROUGE" not in tr("ev.intro_pref", lang) and "ROUGE" in tr("ev.intro", lang)


# ---- Train tab ------------------------------------------------------------------------------------
def write_metrics(run_dir, lines):
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))


PREF_LINES = [dict(step=5, loss=0.69, lr=1e-3, reward_margin=0.01, pref_accuracy=0.5),
              dict(step=10, loss=0.60, lr=1e-3, reward_margin=0.20, pref_accuracy=0.75),
              dict(step=10, eval_loss=0.65, eval_reward_margin=0.15, eval_pref_accuracy=0.7),
              dict(step=15, loss=0.50, lr=1e-3, reward_margin=0.40, pref_accuracy=1.0)]


def test_the_train_tab_plots_reward_margin_and_preference_accuracy_for_a_preference_run(gui):
    job, run_dir = finished_job(gui, "pref-train")
    write_metrics(run_dir, PREF_LINES)
    out = tt.refresh_job(gui, job.id, "", "en")
    assert len(out) == 11
    loss, margin, acc = out[3], out[8], out[9]
    assert margin["visible"] and acc["visible"]
    m, a = margin["value"], acc["value"]
    assert list(m.columns) == ["step", "reward_margin", "series"] and list(a.columns) == ["step", "pref_accuracy", "series"]
    assert m[m.series == "train"]["reward_margin"].tolist() == [0.01, 0.20, 0.40]
    assert m[m.series == "validation"]["reward_margin"].tolist() == [0.15]
    assert a[a.series == "train"]["pref_accuracy"].tolist() == [0.5, 0.75, 1.0]
    assert a[a.series == "validation"]["pref_accuracy"].tolist() == [0.7]
    assert loss["loss"].notna().sum() == 4  # the loss plot as before: 3 training points, 1 validation
    # built hidden, their axes showed '__i18n__{"__type__": "translation_...' (the Chinese walk): named here
    _, _, _, _, _, _, _, _, margin, acc, _ = tt.refresh_job(gui, job.id, "", "zh-CN")
    assert (margin["x_title"], margin["y_title"], acc["y_title"]) == ("步数", "奖励差值", "偏好准确率"), (margin, acc)


def test_before_the_first_validation_the_preference_plots_carry_an_empty_validation_series():
    margin, acc = tp.pref_frames(PREF_LINES[:2])
    for frame in (margin, acc):
        assert set(frame.series) == {"train", "validation"} and frame[frame.series == "validation"].iloc[:, 1].isna().all()


def test_a_supervised_run_looks_as_before_the_preference_plots_stay_hidden(gui):
    job, run_dir = finished_job(gui, "sft-train")
    write_metrics(run_dir, [dict(step=5, loss=1.0, lr=1e-3), dict(step=5, eval_loss=1.1)])
    out = tt.refresh_job(gui, job.id, "", "en")
    assert not out[8]["visible"] and not out[9]["visible"] and out[8]["value"] is None
    assert tp.pref_frames([dict(step=5, loss=1.0)]) == (None, None)
    assert tt.refresh_job(gui, job.id, out[5], "en") == (gr.skip(),) * 11  # nothing new: nothing sent


# ---- Hyperparameters tab --------------------------------------------------------------------------
@pytest.mark.parametrize("lang", CODES)
def test_the_method_choices_are_plain_words_in_every_language(lang):
    labels = {v: tr(f"choice.method.{v}", lang) for v in ("sft", "dpo", "orpo")}
    assert len(set(labels.values())) == 3 and all(v in w for v, w in labels.items())  # the value stays named
    assert lang == "en" or all(w != tr(f"choice.method.{v}", "en") for v, w in labels.items())  # translated
    choices = fields.choice_list("method")
    assert [v for _, v in choices] == ["sft", "dpo", "orpo"]
    with gr.Blocks():
        w = fields.widget_for("method")
    assert [v for _, v in w.choices] == ["sft", "dpo", "orpo"] and w.value == "sft"


def test_start_adapter_offers_the_finished_runs_and_the_page_cannot_point_outside(gui):
    job, _ = finished_job(gui, "sft-first")
    with gr.Blocks():
        w = fields.widget_for("start_adapter", run_choices=[("sft-first", job.id)])
    assert isinstance(w, gr.Dropdown) and [v for _, v in w.choices] == ["", job.id] and w.value == ""
    upd, said = hp.start_adapter_choices(gui, "zh-CN", "")
    assert upd["choices"][0] == (tr("hp.start_from_base", "zh-CN"), "") and (f"sft-first · {job.id}", job.id) in upd["choices"]
    values = dict(zip(fields.NAMES, [fields.default_value(n) for n in fields.NAMES]))
    cfg, problems = fields.build_config({**values, "start_adapter": "/etc"}, gui.ws, check_files=False)
    assert cfg is None and any(p.where == "start_adapter" for p in problems)  # core.trust.check_adapter said no


def activations_gib(text: str) -> float:
    return float(re.search(r"activations ([0-9.]+)", text).group(1))


def test_a_preference_step_counts_chosen_and_rejected_in_the_memory_estimate(gui):
    class Page:
        ws = gui.ws

        def gpus(self):
            return [dict(index=0, name="GPU", memory_total_mib=81920, memory_free_mib=80000)]
    args = ("Qwen/Qwen2.5-7B-Instruct", "4bit", 2048, 2, 16, True, True, False, "lowest", "off")
    sft = hp.memory_fit(Page(), "en", [0], *args, "sft")
    dpo = hp.memory_fit(Page(), "en", [0], *args, "dpo")
    doubled = hp.memory_fit(Page(), "en", [0], *args[:3], 4, *args[4:], "sft")
    assert activations_gib(dpo) > activations_gib(sft)
    assert activations_gib(dpo) == activations_gib(doubled)  # a pair = two sequences
    assert [sequences_per_example(m) for m in ("sft", "dpo", "orpo")] == [1, 2, 2]
