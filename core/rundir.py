"""The run record: the files a job leaves in its run directory (runs/<job id>/), who writes each
one, when and how. This is the interface between the recipes, the supervisor, the launcher and
everything that displays a job (progress, evaluation, export, the GUI, the CLI): each of them
names a file only through this module, and nothing else about a job needs to be remembered in
memory, so any process can pick up where another left off.

    python -m core.rundir                    # prints this protocol

    run = RunDir(job.run_dir)                # run.progress, run.result, run.rank_error(1), run.attempt(id) ...
    write_json(run.progress, {...}, durable=False)   # atomic: a temporary name, then a rename
    read_json(run.result)                    # the dict, or {} when missing, torn or not a mapping
    append_jsonl(run.metrics, record)        # one whole line, flushed and fsynced
    read_jsonl(run.metrics)                  # every complete line (a line being written is skipped)
    claim_json(run.error, info)              # create only if absent (the first failing rank wins)

Written before the job starts (by the launcher, core.launcher):
    config.yaml       the complete settings, headed by the command that re-runs them   atomic, once
    prepare.json      what the supervisor builds before any rank starts                atomic, once
                      ({"builtin_models": [...]}: the demo model, which ranks only load)
    launch_env.json   extra environment of this attempt (tests: DANLU_FAULT)           atomic, once
    dataset.json      the dataset as the person named it: {source, pinned, sha256}
                      (config.yaml holds the pinned copy; an export's model card shows the name)   atomic, once
    stdout.log        config warnings, before the first attempt's output               appended
Written while it runs, by its supervisor (core.supervise) and torchrun:
    supervisor.log    the supervisor's own output (a bug in it lands here)             appended
    stdout.log        every process's output (torchrun --tee), a header per attempt    appended
                      (a job of one process on this machine runs without torchrun)
    ranks/            torchrun's per-rank logs (--log-dir); a one-process job has none  torchrun's
    heartbeat.json    pids and ranks of every process, every 2 s                       atomic
    cancel.request    {"time", "grace"}: Stop was pressed (written by the executor)    atomic
Written while it runs, by rank 0 of the recipe (core.recipes.*); in a job started on each machine
(train --nnodes: a run folder per machine), machine 1, 2, ...'s first process writes progress.json,
metrics.jsonl, run_info.json, stopped.json and result.json (adapter_dir null, adapter_on_machine_0)
into its own folder too (core.engine.common.keeps_record); checkpoints/ and adapter/ are machine 0's (a resume
copies the checkpoint it starts from, and reference_logps.json, to the machines that lack them:
core.engine.train_state.agreed_checkpoint):
    progress.json     phase, step, total_steps at every log (the stall watchdog reads it)   atomic, not fsynced
    metrics.jsonl     a line per logged step {step, epoch, loss, lr, grad_norm, tokens_per_s, time}
                      (+ reward_margin, pref_accuracy for dpo/orpo) or evaluation {step, eval_loss,
                      time} (+ eval_reward_margin, eval_pref_accuracy)                 appended, fsynced
    run_info.json     data counts, total steps, speed features, memory plan, load time   atomic, at set-up
    reference_logps.json   dpo: the starting weights' answer log-probs of every pair {train, val: [[chosen,
                      rejected], ...]}, computed before step 1; a resumed attempt reads them   atomic, once
    probes.jsonl      {step, prompt, answer} at each checkpoint and at the end         appended, fsynced
    checkpoints/      step-NNNNNNN/: written as .step-NNNNNNN.partial/, manifest.json last, renamed
Written at the end:
    adapter/          the LoRA adapter, tokenizer and danlu.json (base model, quantization,
                      chat template); written as .adapter.partial/ and renamed        rank 0
    result.json       {"status": "succeeded", ...}, the very last thing a successful run writes
                      (train and eval: rank 0; merge: its process)                     atomic
    stopped.json      a signal stopped the run early, after its checkpoint             atomic, rank 0
    errors/           rank<R>.json: each failing rank's reason, message, hint, traceback   atomic
    error.json        claimed by the first failing rank; the supervisor adds its diagnosis   exclusive, then atomic
    exit.json         the supervisor's record of the end: state, reason, message, hint   atomic, last
Written by an evaluation job (core.recipes.evaluate) into the TRAINED run's directory:
    eval.json         loss, perplexity, base and fine-tuned answers with their scores   atomic
    eval.csv          the same table for a spreadsheet                                 atomic
Written for a job on a Slurm cluster (core.slurm; the run directory is on a filesystem the nodes share):
    job.sbatch        the batch script, the whole job as submitted (written by the executor)   atomic, per job
    slurm/spec.json   what the job asks the cluster for (nodes, GPUs, time limit, ...)       atomic, once
    slurm/submitted.json   Slurm's job id and the sbatch command                         atomic, per job
    slurm/<Slurm id>.attempt-N.json       the batch script, when attempt N starts (nodes)   renamed into place
    slurm/<Slurm id>.attempt-N.end.json   ... when it ends (srun's exit code, why it stopped, requeue)
    stdout.log        Slurm's --output: the batch script's and every rank's output      appended
    exit.json         the end as Danlu recorded it from Slurm's word and these files   atomic
    (a requeued attempt moves the previous one's ATTEMPT_FILES to attempts/<its job id>/ itself)
Written by the job table (core.jobs), at every change of a job's row:
    jobs/<job id>.json   a copy of the row (state, reason, message, pids, ...); a resumed run holds
                      one per job. The table is rebuilt from these when jobs.sqlite is lost   atomic, not fsynced
Moved by a resume (core.launcher.resume):
    attempts/<job id>/   the stopped attempt's own files (ATTEMPT_FILES), so the next attempt
                      starts clean and `jobs show` of the older job still finds them
    metrics.after-checkpoint.jsonl, probes.after-checkpoint.jsonl
                      lines the stopped attempt logged after the checkpoint the run resumed from

Who reads what: the supervisor reads prepare.json, launch_env.json, cancel.request,
progress.json (stall), result.json and stopped.json (how it ended), errors/ and stdout.log
(core.diagnose: why it failed). The launcher's reconcile reads exit.json, result.json and
stopped.json when a supervisor is gone. core.progress, the GUI and the CLI read progress.json,
metrics.jsonl, run_info.json, result.json, error.json and stdout.log, and heartbeat.json's ranks (a
job on several machines waits for the others until torchrun starts a rank here); the Evaluate tab reads
eval.json, eval.csv and probes.jsonl; chat, evaluation and export read adapter/; an export's model
card (core.model_card) reads config.yaml, dataset.json, run_info.json, metrics.jsonl, result.json
and eval.json.

An evaluation or export job has a run directory of its own with the same supervisor files
(stdout.log, progress.json, result.json, error.json, exit.json). Pure Python: recipes import it.
"""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from core.workspace import atomic_write_text, fsync_dir, temp_file

CONFIG = "config.yaml"
PREPARE = "prepare.json"
LAUNCH_ENV = "launch_env.json"
DATASET_INFO = "dataset.json"
STDOUT_LOG = "stdout.log"
SUPERVISOR_LOG = "supervisor.log"
RANKS = "ranks"
HEARTBEAT = "heartbeat.json"
CANCEL_REQUEST = "cancel.request"
PROGRESS = "progress.json"
METRICS = "metrics.jsonl"
RUN_INFO = "run_info.json"
REFERENCE = "reference_logps.json"
PROBES = "probes.jsonl"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "step-"
ADAPTER = "adapter"
ADAPTER_INFO = "danlu.json"            # inside adapter/
RESULT = "result.json"
STOPPED = "stopped.json"
ERRORS = "errors"
ERROR = "error.json"
EXIT = "exit.json"
EVAL_JSON = "eval.json"
EVAL_CSV = "eval.csv"
ATTEMPTS = "attempts"
JOB_COPIES = "jobs"
SBATCH = "job.sbatch"
SLURM = "slurm"
AFTER_CHECKPOINT = ".after-checkpoint.jsonl"

# The files of one attempt: a resume moves them to attempts/<the stopped job's id>/.
ATTEMPT_FILES = (EXIT, ERROR, ERRORS, STOPPED, RESULT, HEARTBEAT, CANCEL_REQUEST, LAUNCH_ENV)
NAMES = (CONFIG, PREPARE, LAUNCH_ENV, DATASET_INFO, STDOUT_LOG, SUPERVISOR_LOG, RANKS, HEARTBEAT, CANCEL_REQUEST, PROGRESS,
         METRICS, RUN_INFO, REFERENCE, PROBES, CHECKPOINTS, ADAPTER, ADAPTER_INFO, RESULT, STOPPED, ERRORS, ERROR, EXIT,
         EVAL_JSON, EVAL_CSV, ATTEMPTS, JOB_COPIES, SBATCH, SLURM)


class _File:
    """A file of the run directory, as an attribute: RunDir(p).result == p / "result.json"."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, run, owner=None):
        return self if run is None else run.path / self.name


class RunDir:
    """Paths of one run directory (nothing is read or created by making one)."""
    config, prepare, launch_env, dataset_info = _File(CONFIG), _File(PREPARE), _File(LAUNCH_ENV), _File(DATASET_INFO)
    stdout_log, supervisor_log, ranks = _File(STDOUT_LOG), _File(SUPERVISOR_LOG), _File(RANKS)
    heartbeat, cancel_request = _File(HEARTBEAT), _File(CANCEL_REQUEST)
    progress, metrics, run_info, probes = _File(PROGRESS), _File(METRICS), _File(RUN_INFO), _File(PROBES)
    reference = _File(REFERENCE)
    checkpoints, adapter, adapter_partial = _File(CHECKPOINTS), _File(ADAPTER), _File(f".{ADAPTER}.partial")
    result, stopped, errors, error, exit = _File(RESULT), _File(STOPPED), _File(ERRORS), _File(ERROR), _File(EXIT)
    eval_json, eval_csv, attempts = _File(EVAL_JSON), _File(EVAL_CSV), _File(ATTEMPTS)
    sbatch, slurm = _File(SBATCH), _File(SLURM)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def of_config(cls, config_path: str | os.PathLike) -> "RunDir":
        """A recipe is given RUN/config.yaml: the run directory is its folder."""
        return cls(Path(config_path).resolve().parent)

    @property
    def adapter_info(self) -> Path:
        return self.adapter / ADAPTER_INFO

    def rank_error(self, rank: int) -> Path:
        return self.errors / f"rank{rank}.json"

    def rank_errors(self) -> list[Path]:
        return sorted(self.errors.glob("rank*.json"))

    def attempt(self, job_id: str) -> Path:
        return self.attempts / job_id

    def job_copy(self, job_id: str) -> Path:
        return self.path / JOB_COPIES / f"{job_id}.json"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / checkpoint_name(step)

    def has_checkpoint(self) -> bool:
        """A complete checkpoint exists (its manifest is written last; a torn one does not count)."""
        return any(self.checkpoints.glob(f"{CHECKPOINT_PREFIX}*/manifest.json"))

    def slurm_attempt(self, slurm_job_id: str, attempt: int, end: bool = False) -> Path:
        """slurm/<Slurm id>.attempt-N.json (.end.json): what the batch script recorded of an attempt."""
        return self.slurm / f"{slurm_job_id}.attempt-{attempt}{'.end' if end else ''}.json"


def linked_part(run_dir: str | os.PathLike) -> Path | None:
    """The run folder itself (runs/<id>) or its jobs/ folder when it is a symbolic link, else None. Danlu makes
    both as folders. A link there leads into another run's folder (deleting one job deleted the other's
    files) or out of the workspace (a job's copy was written there, deleting the job removed files there): what
    changes a run folder - deleting it, resuming into it, its job copies - stops at such a link (check_not_linked).
    Showing a run (status, log, plots) reads through it: reading changes nothing, and a person who moved a run
    to a larger disk and linked it back still sees it."""
    run_dir = Path(run_dir)
    return first_link(run_dir, run_dir / JOB_COPIES)


def first_link(*paths: Path) -> Path | None:
    """The first of `paths` that is a symbolic link (a folder Danlu makes and changes), else None."""
    return next((p for p in paths if p.is_symlink()), None)


def check_not_linked(run_dir: str | os.PathLike, job_id: str) -> None:
    """JobError in words when linked_part(run_dir) finds a link: nothing is done through it."""
    link = linked_part(run_dir)
    if link is not None:
        from core.errors import JobError
        from core.messages import Msg
        raise JobError(Msg("job.run_folder_link", id=job_id, path=str(link), target=os.readlink(link)),
                       Msg("job.run_folder_link.hint", path=str(link)))


def partial_link_problem(out: str | os.PathLike):
    """A Problem in words when <out>.partial, where an export is written before it is renamed to `out`, is a
    symbolic link, else None. The merge removes a leftover <name>.partial and makes its own: it stopped at the
    link with a bare FileExistsError (after the job had started, with nothing deleted through the link, which
    is right); like a run folder's link (check_not_linked), nothing is written or deleted through it."""
    out = Path(out)
    link = first_link(out.parent / f"{out.name}.partial")
    if link is None:
        return None
    from core.errors import Problem
    from core.messages import Msg
    return Problem("name", Msg("export.partial_link", path=str(link), target=os.readlink(link)),
                   Msg("export.partial_link.hint", path=str(link)))


def checkpoint_name(step: int) -> str:
    """checkpoints/step-0000040: sorts by name and by step alike."""
    return f"{CHECKPOINT_PREFIX}{step:07d}"


def adapter_info_path(adapter_dir: str | os.PathLike) -> Path:
    """danlu.json next to an adapter (a run's adapter/ or any adapter folder)."""
    return Path(adapter_dir) / ADAPTER_INFO


def after_checkpoint(path: Path) -> Path:
    """metrics.jsonl -> metrics.after-checkpoint.jsonl (lines a stopped attempt logged past its checkpoint)."""
    return path.with_name(path.stem + AFTER_CHECKPOINT)


def write_json(path: str | os.PathLike, data: dict, durable: bool = True) -> None:
    """Atomic: readers see the old file or the new one, never half of one. `durable` adds the
    fsyncs that make it survive a power cut (skipped for files rewritten at every logged step)."""
    atomic_write_text(Path(path), json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", durable)


def read_json(path: str | os.PathLike) -> dict:
    """The mapping in a JSON file; {} when the file is missing, unreadable, torn or not a mapping."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack ("[[[[...")
        return {}
    return data if isinstance(data, dict) else {}


def add_to_json(path: str | os.PathLike, info: dict) -> None:
    """`info`'s non-empty values written over the file's (the end's diagnosis over what a rank claimed in error.json)."""
    write_json(path, dict(read_json(path), **{k: v for k, v in info.items() if v not in (None, "")}))


def read_small_json(path: str | os.PathLike, max_bytes: int) -> dict:
    """read_json for a file that anyone may have put in a run folder: only a regular file of at most
    max_bytes, never through a symbolic link. {} for a link (to /etc/passwd, to another workspace), a
    pipe (reading it waits for ever), a device (/dev/zero never ends) or anything larger."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return {}
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(max_bytes + 1)
        data = json.loads(raw.decode("utf-8")) if len(raw) <= max_bytes else None
    except (OSError, ValueError, RecursionError):
        return {}
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else {}


def append_jsonl(path: str | os.PathLike, record: dict, durable: bool = True) -> None:
    """One whole line per record, flushed (and fsynced), so a reader never sees a torn line."""
    line = json.dumps(record, ensure_ascii=False, default=float) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        if durable:
            os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete line that holds a JSON object (the one being written right now is skipped; an unreadable
    one too: bytes that are not UTF-8, which failed the whole read and with it `jobs list` of every job, or
    another JSON value, which its readers took for a record)."""
    out = []
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                    continue
                if isinstance(record, dict):
                    out.append(record)
    except OSError:
        pass
    return out


def claim_json(path: str | os.PathLike, data: dict) -> bool:
    """Create `path` with `data` only if it does not exist yet (whole, never half-written);
    True when this call created it. Several failing ranks race for error.json: the first wins."""
    path = Path(path)
    fd, tmp = temp_file(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails when the file exists: exclusive, and complete when it appears
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    fsync_dir(path.parent)
    return True


if __name__ == "__main__":
    sys.stdout.write(__doc__)
