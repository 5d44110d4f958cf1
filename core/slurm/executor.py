"""SlurmExecutor: a job's processes on a Slurm cluster. The same job as a local one (config, dataset,
run folder, states, reasons, resume); Slurm schedules it instead of Danlu's GPU leases.

    start   render job.sbatch into the run folder (core.slurm.script) and `sbatch` it; the job's
            Slurm id goes into the job table (slurm_job_id). The job stays Queued while Slurm says
            PENDING, with Slurm's reason in words as its message.
    track   what reconcile asks of a Slurm job: squeue (at most every QUEUE_TTL_S, one call for all of
            them) moves it Queued -> Starting -> Running; when its attempt is over, core.slurm.outcome
            turns Slurm's word and the run's files into the final state, written to exit.json; a
            requeued attempt gets a job row of its own (<id>-rN, parent: the attempt before).
    cancel  cancel.request, then `scancel --batch --signal=TERM` (the batch shell passes it to every
            rank, which saves a checkpoint); a job still pending is simply cancelled; after the grace
            period a job still running is cancelled by Slurm (SIGTERM, then SIGKILL).
    sweep   `scancel`; done when Slurm no longer runs it.
    logs    stdout.log, which Slurm appends to (--output, --open-mode=append).

Nothing here keeps a handle: the job table, the run folder and Slurm hold every fact, so the GUI can
restart (or the CLI that submitted exit) and the next reconcile picks the job up again.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
import time
from pathlib import Path

from core import jobs as J
from core.errors import DanluError, JobError
from core.slurm import commands, outcome
from core.slurm.commands import QueueEntry, SlurmError
from core.slurm.script import ScriptJob, render
from core.slurm.spec import SlurmSpec
from core.workspace import REPO_ROOT, Workspace, atomic_write_text

QUEUE_TTL_S = 3.0     # squeue at most this often per process (clusters dislike being polled every second)
KILL_AFTER_S = 30.0   # after Stop's grace, give the batch shell this long before Slurm's own cancel
SCRIPT = "job.sbatch"
SLURM_DIR = "slurm"
ATTEMPT_RE = re.compile(r"^(?P<first>.+)-r(?P<n>\d+)$")


def attempt_of(job_id: str) -> tuple[str, int]:
    """'<id>-r2' -> ('<id>', 2); a job that submitted is its own attempt 0."""
    m = ATTEMPT_RE.match(job_id)
    return (m.group("first"), int(m.group("n"))) if m else (job_id, 0)


def next_attempt_id(job_id: str) -> str:
    first, n = attempt_of(job_id)
    return f"{first}-r{n + 1}"


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(Path(path), json.dumps(data, indent=2, default=str) + "\n")


# ---- one squeue for every Slurm job this process tracks ---------------------------------------------
_cache_lock = threading.Lock()
_cache: dict = {"at": 0.0, "ids": frozenset(), "entries": {}}


def queue_now(ids: list[str], fresh: bool = False) -> dict[str, QueueEntry]:
    """Slurm's view of these jobs, read at most every QUEUE_TTL_S (the ids asked for before are read too)."""
    want = frozenset(i for i in ids if i)
    with _cache_lock:
        if not fresh and want <= _cache["ids"] and time.monotonic() - _cache["at"] < QUEUE_TTL_S:
            return _cache["entries"]
        ask = want | (_cache["ids"] if time.monotonic() - _cache["at"] < 60 else frozenset())
        entries = commands.queue(sorted(ask))
        _cache.update(at=time.monotonic(), ids=ask, entries=entries)
        return entries


def forget_cache() -> None:
    with _cache_lock:
        _cache.update(at=0.0, ids=frozenset(), entries={})


# ---- the run folder's Slurm files --------------------------------------------------------------------
def spec_path(run_dir: Path) -> Path:
    return Path(run_dir) / SLURM_DIR / "spec.json"


def write_spec(run_dir: Path, spec: SlurmSpec) -> None:
    write_json(spec_path(run_dir), dataclasses.asdict(spec))


def read_spec(run_dir: Path) -> SlurmSpec:
    data = read_json(spec_path(run_dir))
    names = {f.name for f in dataclasses.fields(SlurmSpec)}
    return SlurmSpec(**{k: v for k, v in data.items() if k in names})


def record(run_dir: Path, slurm_job_id: str, attempt: int, end: bool = False) -> Path:
    """slurm/<Slurm id>.attempt-N.json (.end.json): what the batch script recorded of an attempt."""
    return Path(run_dir) / SLURM_DIR / f"{slurm_job_id}.attempt-{attempt}{'.end' if end else ''}.json"


def attempt_files(job: J.Job) -> Path:
    """Where this attempt's own files are: attempts/<id>/ once a later attempt moved them, else the run folder."""
    own = Path(job.run_dir) / "attempts" / job.id
    return own if own.is_dir() else Path(job.run_dir)


def gather(job: J.Job, entry: QueueEntry | None) -> outcome.AttemptFacts:
    run, files = Path(job.run_dir), attempt_files(job)
    _, n = attempt_of(job.id)
    state, restarts, reason = (entry.state, entry.restarts, entry.reason) if entry else ("", -1, "")
    if entry and restarts < n:
        state = "PENDING"  # Slurm still runs (or closes) the attempt before this one
    log = ""
    ended = read_json(record(run, job.slurm_job_id, n, end=True))
    started = read_json(record(run, job.slurm_job_id, n))
    if ended or (entry is None or state in outcome.ENDED or restarts > n):
        from core.diagnose import read_from
        log = outcome.attempt_log(read_from(run / "stdout.log", 0, max_bytes=4_000_000), job.slurm_job_id, n)
    return outcome.AttemptFacts(
        attempt=n, slurm_job_id=job.slurm_job_id, slurm_state=state, slurm_restarts=restarts, slurm_reason=reason,
        time_limit=entry.time_limit if entry else "", started=started, ended=ended,
        result=read_json(files / "result.json"), stopped=read_json(files / "stopped.json"),
        cancel_requested=job.state == J.CANCELLING or (files / "cancel.request").exists(),
        log_text=log, nproc=job.nproc, run_dir=files)


class SlurmExecutor:
    name = "slurm"
    schedules_itself = True  # Slurm queues it: the launcher's GPU leases and queue do not apply

    # ---- start ------------------------------------------------------------------------------------
    def script_job(self, ws: Workspace, job: J.Job) -> ScriptJob:
        from core.demo_model import is_builtin
        run = Path(job.run_dir)
        needs = read_json(run / "prepare.json").get("builtin_models") or []
        env = read_json(run / "launch_env.json")
        argv = job.argv_list  # the torchrun command each node runs: python -m torch.distributed.run ... -m MODULE
        module = argv[len(argv) - 1 - argv[::-1].index("-m") + 1] if argv.count("-m") > 1 else "core.recipes.train"
        return ScriptJob(job_id=job.id, run_dir=run, workspace=ws.root, repo=REPO_ROOT, python=sys.executable,
                         spec=read_spec(run), module=module, resume="--resume" in job.argv_list,
                         prepare_demo_model=any(is_builtin(n) for n in needs), env=env, name=job.name)

    def start(self, ws: Workspace, job: J.Job) -> dict:
        """Write job.sbatch and submit it; the job-table fields that identify it on the cluster."""
        run = Path(job.run_dir)
        script = run / SCRIPT
        atomic_write_text(script, render(self.script_job(ws, job)))
        slurm_id = commands.submit(script)
        write_json(run / SLURM_DIR / "submitted.json", dict(slurm_job_id=slurm_id, job_id=job.id, time=time.time(),
                                                            command=["sbatch", "--parsable", str(script)]))
        forget_cache()
        return dict(slurm_job_id=slurm_id)

    # ---- watching ---------------------------------------------------------------------------------
    def entry(self, job: J.Job, active_ids: list[str] = ()) -> QueueEntry | None:
        return queue_now([job.slurm_job_id, *active_ids]).get(job.slurm_job_id)

    def poll(self, job: J.Job) -> str:
        """"owned" while Slurm holds the job (queued or running), "gone" once this attempt is over."""
        if not job.slurm_job_id:
            return "gone"
        return "gone" if gather(job, self.entry(job)).over else "owned"

    def track(self, ws: Workspace, job: J.Job, active_ids: list[str] = ()) -> bool:
        """Bring one Slurm job's row in line with Slurm and its run folder; True when its state changed."""
        store = J.JobStore(ws.db_path)
        if not job.slurm_job_id:
            return False
        entry = self.entry(job, active_ids)
        facts = gather(job, entry)
        if facts.over:
            return self.finish(ws, store, job, facts)
        if job.state == J.CANCELLING:
            self.enforce_grace(job)
            return False
        if facts.slurm_state in outcome.WAITING:
            # Slurm's reason code (Resources, Priority, ...) and its words: the page shows them translated
            key = (facts.slurm_reason or "None").split(",")[0].strip()
            words = commands.pending_words(facts.slurm_reason)
            if job.state == J.QUEUED and (job.message, job.reason) != (words, key):
                store.update(job.id, message=words, reason=key)
            return False
        changed = False
        if job.state == J.QUEUED and facts.slurm_state in outcome.STARTING | outcome.RUNNING:
            changed = store.transition(job.id, J.STARTING, message="", reason="")
        if facts.slurm_state in outcome.RUNNING and store.get(job.id).state == J.STARTING:
            changed = store.transition(job.id, J.RUNNING) or changed
        return changed

    def finish(self, ws: Workspace, store: J.JobStore, job: J.Job, facts: outcome.AttemptFacts) -> bool:
        state, info = outcome.outcome(facts)
        rc = facts.ended.get("returncode") if facts.ended else None
        files = attempt_files(job)
        write_json(files / "exit.json", dict(job_id=job.id, returncode=rc, state=state, ended_at=time.time(),
                                             slurm_job_id=job.slurm_job_id, slurm_state=facts.slurm_state,
                                             attempt=facts.attempt, **info))
        if state == J.FAILED:
            merged = dict(read_json(files / "error.json"), **{k: v for k, v in info.items() if v not in (None, "")})
            write_json(files / "error.json", merged)
        moved = store.transition(job.id, state, exit_code=rc, reason=info.get("reason", ""),
                                 message=info.get("message", ""), hint=info.get("hint", ""))
        if facts.requeued and state == J.INTERRUPTED:
            self.next_attempt(store, job)
        return moved

    def next_attempt(self, store: J.JobStore, job: J.Job) -> J.Job:
        """The job row of the attempt Slurm runs next (it resumes from the checkpoint by itself)."""
        new_id = next_attempt_id(job.id)
        if store.get(new_id) is None:
            argv = job.argv_list + ([] if "--resume" in job.argv_list else ["--resume"])
            store.create(id=new_id, kind=job.kind, name=job.name, run_dir=job.run_dir, config_path=job.config_path,
                         config_sha256=job.config_sha256, dataset_sha256=job.dataset_sha256, argv=argv, gpus=[],
                         nproc=job.nproc, parent_id=job.id, executor=self.name, slurm_job_id=job.slurm_job_id,
                         message="requeued by Slurm: waiting to start again")
        return store.get(new_id)

    # ---- stopping ---------------------------------------------------------------------------------
    def cancel(self, ws: Workspace, job: J.Job, grace: float) -> str:
        """Ask the ranks to save and stop (through the batch shell): "signalled". A job that has not
        started is cancelled in Slurm's queue: "dequeued". "" when Slurm has nothing of it to stop."""
        files = attempt_files(job)
        write_json(files / "cancel.request", {"time": time.time(), "grace": grace})
        if not job.slurm_job_id:
            return ""
        entry = queue_now([job.slurm_job_id], fresh=True).get(job.slurm_job_id)
        forget_cache()
        if entry is None or entry.state in outcome.ENDED:
            return ""
        if entry.state in outcome.WAITING and entry.restarts <= attempt_of(job.id)[1]:
            commands.kill_job(job.slurm_job_id)  # nothing has started: nothing to save
            return "dequeued"
        commands.signal_job(job.slurm_job_id, batch=True)
        return "signalled"

    def enforce_grace(self, job: J.Job) -> None:
        """Stop was pressed `grace` seconds ago and the job still runs: Slurm's own cancel (SIGTERM, SIGKILL)."""
        req = read_json(attempt_files(job) / "cancel.request")
        if req and time.time() - float(req.get("time", 0)) > float(req.get("grace", 30)) + KILL_AFTER_S:
            commands.kill_job(job.slurm_job_id)

    def sweep(self, job: J.Job) -> bool:
        if job.slurm_job_id:
            commands.kill_job(job.slurm_job_id)
            forget_cache()
            entry = queue_now([job.slurm_job_id], fresh=True).get(job.slurm_job_id)
            return entry is None or entry.state in outcome.ENDED
        return True

    def logs(self, job: J.Job) -> Path:
        return Path(job.run_dir) / "stdout.log"


# ---- what core.launcher calls for a Slurm job ------------------------------------------------------
class SubmitRefused(JobError):
    """sbatch refused the job (a partition, account or limit the cluster does not accept): exit code 2."""


def submit(ws: Workspace, job: J.Job) -> J.Job:
    """sbatch the job now: Slurm queues it (it stays Queued, with Slurm's reason, until it runs). A
    refusal ends the job as Failed (submit_failed) and is raised with Slurm's words."""
    store = J.JobStore(ws.db_path)
    try:
        store.update(job.id, **SlurmExecutor().start(ws, job))
    except DanluError as e:
        store.transition(job.id, J.FAILED, reason="submit_failed", message=f"Slurm did not take the job: {e.message}",
                         hint=e.hint)
        raise SubmitRefused(f"Slurm did not take job {job.id}: {e.message}", e.hint) from None
    return store.get(job.id)


def cancel_job(ws: Workspace, job: J.Job, grace: float) -> J.Job:
    """Stop: a pending job is simply cancelled (nothing ran); a running one saves and stops, and its end
    is recorded by reconcile once Slurm has let go of it."""
    store = J.JobStore(ws.db_path)
    was_queued = job.state == J.QUEUED
    store.transition(job.id, J.CANCELLING)
    if SlurmExecutor().cancel(ws, store.get(job.id), grace) == "dequeued" and was_queued:
        store.transition(job.id, J.CANCELLED, reason="cancelled", message="Cancelled before it started.")
    return store.get(job.id)


def track_safely(ws: Workspace, job: J.Job, jobs: list[J.Job]) -> bool:
    """track(), for reconcile: a cluster that does not answer leaves the job as it is (asked again next time)."""
    try:
        return SlurmExecutor().track(ws, job, [j.slurm_job_id for j in jobs if j.executor == SlurmExecutor.name])
    except DanluError as e:
        print(f"[danlu] job {job.id}: Slurm could not be asked about it: {e}", file=sys.stderr)
        return False


def spec_for(ws: Workspace, **overrides) -> SlurmSpec:
    """settings.yaml's `slurm:` defaults with the CLI's or the page's values on top (None: keep the default)."""
    from core.paths import _settings
    from core.slurm.spec import settings_spec, with_overrides
    return with_overrides(settings_spec(_settings(ws)), **overrides)


def attempt_nodes(job: J.Job) -> str:
    """The node list this attempt ran on (from its start record), or ''."""
    return read_json(record(Path(job.run_dir), job.slurm_job_id, attempt_of(job.id)[1])).get("nodes", "")


def attempts(run_dir: Path) -> list[dict]:
    """Every attempt the batch script recorded in this run folder, oldest first (`jobs show`)."""
    out = []
    folder = Path(run_dir) / SLURM_DIR
    for path in folder.glob("*.attempt-*.json"):
        if path.name.endswith(".end.json"):
            continue
        rec = read_json(path)
        end = read_json(path.with_name(path.name[:-len(".json")] + ".end.json"))
        rec.update({k: end[k] for k in ("returncode", "stop", "requeue", "ended") if k in end})
        out.append(rec)
    return sorted(out, key=lambda r: (r.get("started") or 0, int(r.get("attempt", 0))))


def check_submit(ws: Workspace, spec: SlurmSpec) -> None:
    """Before a job is created: the spec's problems and a workspace the nodes cannot see, all at once."""
    from core.errors import InputError
    from core.slurm import shared
    problems = spec.problems()
    if not problems:
        try:
            nodes = commands.partition_nodes(spec.partition)
        except SlurmError as e:
            raise InputError(problems=[shared_problem(e)], title="The Slurm cluster cannot be reached") from None
        problems = shared.problems({"workspace": ws.root, "Danlu": REPO_ROOT}, nodes)
    if problems:
        raise InputError(problems=problems, title="The job cannot be sent to the Slurm cluster")


def shared_problem(e: SlurmError):
    from core.errors import Problem
    return Problem("--slurm", e.message, e.hint)
