"""Evaluation jobs, for the CLI (`python app.py eval`) and the Evaluate tab. Pure Python (no torch).

    job = submit_eval(ws, "JOB_ID or run dir", origin=trust.SHELL, max_samples=200)  # an "eval" job
    report = read_eval(run_dir)       # eval.json as a dict, or None before the first evaluation
    rows = table_rows(report)         # [[prompt, reference, base, tuned, base ROUGE-L, tuned ROUGE-L, ...]]
    probes = read_probes(run_dir)     # answers to the probe prompts at each checkpoint (probes.jsonl)

The eval job gets its own run dir (runs/<eval job id>/: stdout.log, progress.json, result.json and a
copy of the outputs) and writes eval.json / eval.csv into the TRAINED run's directory, so the
Evaluate tab finds the newest evaluation of a run next to its adapter. It runs on the training
job's GPUs (one process per GPU, like training; one process on a CPU machine) and waits in the
queue while those GPUs are busy.

eval.json: {eval_loss, perplexity, base_eval_loss, base_perplexity,
            metrics: {base: {n, rouge_l, bleu, corpus_bleu, exact_match}, tuned: {...}},
            samples: [{prompt, reference, base, tuned, base_rouge_l, tuned_rouge_l, base_bleu, tuned_bleu,
                       base_exact, tuned_exact}], source, n_samples, settings, runtime_s, ...,
            notes: [English, for the CLI], notes_msg: [their codes, for the page] (core.messages.keep_all)}
Preference runs (pairs) add "preference": {base_accuracy, tuned_accuracy, base_margin, tuned_margin, pairs,
score}, leave metrics empty, and their samples are {prompt, chosen, rejected, reference, tuned,
base_margin, tuned_margin} (table_rows then has the preference columns).
"""
from __future__ import annotations

from pathlib import Path

from core import jobs as J
from core import launcher, trust
from core.config import as_number, quoted
from core.errors import InputError, Problem
from core.paths import exists, is_dir, is_file
from core.launch_commands import recipe_command
from core.messages import Msg
from core.rundir import RunDir, read_json, read_jsonl
from core.runs import resolve_trained_run
from core.workspace import Workspace

EVAL_MODULE = "core.recipes.evaluate"


def eval_command(run_dir: Path, out_dir: Path, nproc: int, *, max_samples: int, max_new_tokens: int,
                 dataset: str | None = None) -> list[str]:
    args = ["--trained-run", str(run_dir), "--eval-dir", str(out_dir), "--max-samples", str(max_samples),
            "--max-new-tokens", str(max_new_tokens)] + (["--dataset", dataset] if dataset else [])
    return recipe_command(out_dir, nproc, launcher.LaunchSpec(), EVAL_MODULE, args)


def submit_eval(ws: Workspace, job_or_run: str, *, origin: str, max_samples: int = 200, max_new_tokens: int = 128,
                dataset: str | None = None, gpus: list | None = None) -> J.Job:
    """Queue an evaluation of a finished training run; returns the QUEUED/STARTING eval job.
    origin (core.trust): where `dataset` came from."""
    problems = []
    if dataset is not None:
        dataset = trust.check_file(dataset, ws, origin, field="dataset")
    # from the page these are what its boxes sent (a direct HTTP call: NaN, 1e999, text, 5,000 digits)
    samples, tokens = as_number(max_samples, int), as_number(max_new_tokens, int)
    if samples is None or not 1 <= samples <= 100_000:
        problems.append(Problem("max_samples", Msg("eval.max_samples", n=quoted(max_samples))))
    if tokens is None or not 1 <= tokens <= 8192:
        problems.append(Problem("max_new_tokens", Msg("eval.max_new_tokens", n=quoted(max_new_tokens))))
    if dataset is not None and not is_file(dataset):
        problems.append(dataset_problem(str(dataset)))
    if problems:
        raise InputError(problems=problems, title=Msg("eval.title"))
    run = resolve_trained_run(ws, job_or_run)
    train_job = run.job
    if gpus is None:
        gpus = train_job.gpu_list if train_job and train_job.gpu_list else None
    if gpus is None or gpus == ["cpu"]:
        gpus, nproc = launcher.resolve_devices(launcher.LaunchSpec(nproc=1))
    else:
        nproc = len(gpus)
    job_id = J.new_id()
    out_dir = ws.run_dir(job_id)
    argv = eval_command(run.run_dir, out_dir, nproc, max_samples=samples, max_new_tokens=tokens,
                        dataset=str(Path(dataset).resolve()) if dataset else None)
    # named after the run it evaluates: the job table's kind column says "evaluation" in the page's
    # language (a word in the name stayed English on every page)
    return launcher.submit_command(ws, "eval", out_dir, argv, gpus=gpus, nproc=nproc,
                                   name=train_job.name if train_job else run.run_dir.name,
                                   parent_id=train_job.id if train_job else "", base_model=run.base_model)


def dataset_problem(dataset: str) -> Problem:
    """Why `--dataset` names no file to read: nothing typed, nothing there, a folder, a pipe or a device
    (each was "file not found: ...", the empty one with no path at all, and none said what to do)."""
    path = Path(dataset)
    if not dataset.strip():
        said = Msg("eval.no_dataset")
    elif is_dir(path):
        said = Msg("config.dataset_folder", path=dataset)
    elif exists(path):
        said = Msg("any.not_regular_at", path=dataset)
    else:
        said = Msg("any.file_not_found_at", path=dataset)
    return Problem("dataset", said, Msg("eval.dataset.hint"))


def read_eval(run_dir: str | Path) -> dict | None:
    """The newest evaluation of a run (eval.json in the training run's directory, or an eval job's)."""
    return read_json(RunDir(run_dir).eval_json) or None


def is_preference(report: dict | None) -> bool:
    """An evaluation of a preference run (pairs scored before and after)."""
    return bool(report) and report.get("preference") is not None


def is_preference_run(run_dir: str | Path, report: dict | None = None) -> bool:
    """A run of a preference method (its config.yaml says dpo or orpo), or one whose evaluation scored
    pairs: its evaluation is accuracy and margin, not ROUGE and BLEU."""
    if is_preference(report):
        return True
    from core.config_io import read_yaml
    from core.errors import DanluError
    from core.method_check import PAIR_METHODS
    try:
        data = read_yaml(RunDir(run_dir).config)
    except DanluError:  # no readable config: nothing says it is one
        return False
    return isinstance(data, dict) and data.get("method") in PAIR_METHODS


def table_rows(report: dict | None) -> list[list]:
    """The per-sample table for display, in the order of the Evaluate tab's columns (webui/tabs/evaluate_tab.py
    TABLE_KEYS, PAIR_TABLE_KEYS for a preference run), scores rounded to 3 places."""
    if not report:
        return []
    if is_preference(report):
        return [[s["prompt"], s["chosen"], s["rejected"], s["tuned"], _round(s.get("base_margin")),
                 _round(s.get("tuned_margin"))] for s in report.get("samples", [])]
    rows = []
    for s in report.get("samples", []):
        rows.append([s["prompt"], s["reference"], s["base"], s["tuned"], round(s["base_rouge_l"], 3),
                     round(s["tuned_rouge_l"], 3), round(s["base_bleu"], 3), round(s["tuned_bleu"], 3),
                     "yes" if s["base_exact"] else "no", "yes" if s["tuned_exact"] else "no"])
    return rows


def _round(x):
    return None if x is None else round(x, 3)


def _shown(x, pct=False) -> str:
    """A score of a summary line: 0.123, or 12% (pct), or - when there is none."""
    if x is None:
        return "-"
    return f"{100 * x:.0f}%" if pct else f"{x:.3f}"


def preference_line(p: dict) -> str:
    """'preference accuracy 40% -> 90%, mean margin -0.12 -> 2.31 nats on 10 held-out pairs'."""
    return (f"base -> fine-tuned on {p.get('pairs', 0)} held-out pairs: preference accuracy "
            f"{_shown(p.get('base_accuracy'), True)} -> {_shown(p.get('tuned_accuracy'), True)}, mean margin "
            f"{_shown(p.get('base_margin'))} -> {_shown(p.get('tuned_margin'))} nats")


def summary_line(report: dict) -> str:
    """'Validation loss 0.81 (perplexity 2.24); ROUGE-L 0.02 -> 0.77, BLEU 0.01 -> 0.49, exact 0% -> 25%'."""
    m = report.get("metrics", {})
    b, t = m.get("base", {}), m.get("tuned", {})
    parts = []
    if report.get("eval_loss") is not None:
        parts.append(f"validation loss {report['eval_loss']:.4f} (perplexity {report['perplexity']:.2f}; "
                     f"base model {report.get('base_eval_loss', float('nan')):.4f})")
    if is_preference(report):
        return "; ".join(parts + [preference_line(report["preference"])])
    parts.append(f"base -> fine-tuned on {report.get('n_samples', 0)} held-out prompts: ROUGE-L {_shown(b.get('rouge_l'))} -> "
                 f"{_shown(t.get('rouge_l'))}, BLEU {_shown(b.get('bleu'))} -> {_shown(t.get('bleu'))}, "
                 f"exact match {_shown(b.get('exact_match'), True)} -> {_shown(t.get('exact_match'), True)}")
    return "; ".join(parts)


def read_probes(run_dir: str | Path) -> list[dict]:
    """probes.jsonl of a training run: [{step, prompt, answer}, ...] (empty when none were asked)."""
    return read_jsonl(RunDir(run_dir).probes)
