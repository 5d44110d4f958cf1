"""SlurmExecutor: a job's processes on a Slurm cluster, behind the executor seam (core.executors). The
same job as a local one (config, dataset, run folder, states, reasons, resume); Slurm schedules it
instead of Danlu's GPU leases, so `schedules_itself` is true and the launcher calls:

    allocate    check what the job asks for and that the nodes can see the workspace; no GPU lease
    submit      write job.sbatch into the run folder (core.slurm.script) and `sbatch` it; Slurm's id goes
                into the job table (slurm_job_id). The job stays Queued while Slurm says PENDING, with
                Slurm's reason as its reason and, in words, its message.
    track       what reconcile asks: squeue (at most every QUEUE_TTL_S, one call for all the jobs)
                moves it Queued -> Starting -> Running; once an attempt is over, core.slurm.outcome turns
                Slurm's word and the run's files into the final state, recorded in exit.json; a
                requeued attempt gets a job row of its own (<id>-rN, parent: the attempt before)
    stop        Stop: cancel.request, then `scancel --batch --signal=TERM` (the batch shell passes it to
                every rank, which saves a checkpoint); a job still pending is simply cancelled; after
                the grace period a job still running is cancelled by Slurm itself (SIGTERM, SIGKILL)
    poll, cancel, sweep, logs   as the seam names them; logs: stdout.log, which Slurm appends to

Nothing here keeps a handle: the job table, the run folder and Slurm hold every fact, so the GUI can
restart (or the CLI that submitted exit) and the next reconcile picks the job up again.
"""
from __future__ import annotations

import dataclasses
import re
import sys
import threading
import time
from pathlib import Path

from core import jobs as J
from core.errors import DanluError, InputError, JobError, Problem
from core.messages import Msg, recorded
from core.rundir import RunDir, add_to_json, read_json, write_json
from core.slurm import commands, outcome
from core.slurm.commands import QueueEntry
from core.slurm.script import ScriptJob, job_name, render
from core.slurm.spec import SlurmSpec, format_time
from core.workspace import REPO_ROOT, Workspace, atomic_write_text

QUEUE_TTL_S = 3.0     # squeue at most this often per process (clusters dislike being polled every second)
DOWN_TTL_S = 15.0     # a controller that did not answer is asked again only after this long (each try takes ~10 s)
KILL_AFTER_S = 30.0   # after Stop's grace, give the batch shell this long before Slurm's own cancel
ATTEMPT_RE = re.compile(r"^(?P<first>.+)-r(?P<n>\d+)$")
OWNED, GONE = "owned", "gone"  # poll()'s answers, as core.executors names them (it imports this module)


def attempt_of(job_id: str) -> tuple[str, int]:
    """'<id>-r2' -> ('<id>', 2); a job that submitted is its own attempt 0."""
    m = ATTEMPT_RE.match(job_id)
    return (m.group("first"), int(m.group("n"))) if m else (job_id, 0)


def next_attempt_id(job_id: str) -> str:
    """Attempt N of a requeued job is <first id>-rN: the batch script names attempts/<id>-rN alike,
    so the script and Danlu agree on where each attempt's files go without talking."""
    first, n = attempt_of(job_id)
    return f"{first}-r{n + 1}"


def slurm_name(job: J.Job) -> str:
    """The name its Slurm job has: every attempt runs as the job that submitted (danlu-<first id>)."""
    return job_name(attempt_of(job.id)[0])


def own_entry(job: J.Job, entries: dict[str, QueueEntry]) -> QueueEntry | None:
    """Slurm's entry of this job's number, where it is this job's: a controller restarted without its
    saved state hands out the numbers of forgotten jobs again, and another job (Danlu's or not) with
    this number is not this one (its state is not this job's; it is never cancelled)."""
    entry = entries.get(job.slurm_job_id)
    return entry if entry is not None and entry.name == slurm_name(job) else None


def newest_attempts(jobs: list[J.Job]) -> list[J.Job]:
    """One row per Danlu job for the job table and `jobs list`: an attempt that a requeued one continues
    (its <id>-rN row exists) is left out; `jobs show` and the next attempt's parent still name it."""
    ids = {j.id for j in jobs}
    return [j for j in jobs if j.executor != "slurm" or next_attempt_id(j.id) not in ids]


# ---- one squeue for every Slurm job this process tracks ---------------------------------------------
_cache_lock = threading.Lock()
_cache: dict = {"at": 0.0, "ids": frozenset(), "entries": {}, "down_at": 0.0, "down": None}


def queue_now(ids: list[str], fresh: bool = False) -> dict[str, QueueEntry]:
    """Slurm's view of these jobs, read at most every QUEUE_TTL_S (the ids asked for lately are read too).
    A controller that does not answer is not asked again for DOWN_TTL_S: the same error is raised
    (squeue retries for ~10 s before it gives up, and a reconcile asked once per job: a GUI starting
    with five Slurm jobs and the controller down waited most of a minute)."""
    want = frozenset(i for i in ids if i)
    with _cache_lock:
        if not fresh and _cache["down"] is not None and time.monotonic() - _cache["down_at"] < DOWN_TTL_S:
            raise _cache["down"]
        if not fresh and want <= _cache["ids"] and time.monotonic() - _cache["at"] < QUEUE_TTL_S:
            return _cache["entries"]
        ask = want | (_cache["ids"] if time.monotonic() - _cache["at"] < 60 else frozenset())
        try:
            entries = commands.queue(sorted(ask))
        except DanluError as e:
            _cache.update(down_at=time.monotonic(), down=e)
            raise
        _cache.update(at=time.monotonic(), ids=ask, entries=entries, down=None)
        return entries


def forget_cache() -> None:
    with _cache_lock:
        _cache.update(at=0.0, ids=frozenset(), entries={}, down_at=0.0, down=None)


# ---- the run folder's Slurm files --------------------------------------------------------------------
def write_spec(run_dir: Path, spec: SlurmSpec) -> None:
    write_json(RunDir(run_dir).slurm / "spec.json", dataclasses.asdict(spec))


def read_spec(run_dir: Path) -> SlurmSpec:
    data = read_json(RunDir(run_dir).slurm / "spec.json")
    names = {f.name for f in dataclasses.fields(SlurmSpec)}
    return SlurmSpec(**{k: v for k, v in data.items() if k in names})


def attempt_files(job: J.Job) -> RunDir:
    """Where this attempt's own files are: attempts/<id>/ once a later attempt moved them, else the run folder."""
    own = RunDir(job.run_dir).attempt(job.id)
    return RunDir(own if own.is_dir() else job.run_dir)


def attempt_nodes(job: J.Job) -> str:
    """The node list this attempt ran on (from its start record), or ''."""
    return read_json(RunDir(job.run_dir).slurm_attempt(job.slurm_job_id, attempt_of(job.id)[1])).get("nodes", "")


def attempts(run_dir: Path) -> list[dict]:
    """Every attempt the batch script recorded in this run folder, oldest first (`jobs show`)."""
    out = []
    for path in RunDir(run_dir).slurm.glob("*.attempt-*.json"):
        if path.name.endswith(".end.json"):
            continue
        rec = read_json(path)
        end = read_json(path.with_name(path.name[:-len(".json")] + ".end.json"))
        rec.update({k: end[k] for k in ("returncode", "stop", "requeue", "ended") if k in end})
        out.append(rec)
    return sorted(out, key=lambda r: (r.get("started") or 0, int(r.get("attempt", 0))))


def gather(job: J.Job, entry: QueueEntry | None) -> outcome.AttemptFacts:
    """Everything known now about this job's attempt: Slurm's view and the attempt's own files."""
    run, files = RunDir(job.run_dir), attempt_files(job)
    _, n = attempt_of(job.id)
    state, restarts, reason = (entry.state, entry.restarts, entry.reason) if entry else ("", -1, "")
    if entry is None:  # a Queued job too: scancelled while it waited, sacct says CANCELLED
        state = commands.accounting(job.slurm_job_id, slurm_name(job))  # squeue forgot it; sacct may remember
        state = state if state in outcome.ENDED else ""
    started = read_json(run.slurm_attempt(job.slurm_job_id, n))
    if entry and (restarts < n or (n and state == "COMPLETING" and not started)):
        # Slurm still runs (or closes) the attempt before this one: a requeue counts the restart at
        # once, and the job shows COMPLETING while the old attempt closes
        state = "PENDING"
    ended = read_json(run.slurm_attempt(job.slurm_job_id, n, end=True))
    log = ""
    if ended or entry is None or state in outcome.ENDED or restarts > n:
        from core.diagnose import read_from
        log = outcome.attempt_log(read_from(run.stdout_log, 0, max_bytes=4_000_000), job.slurm_job_id, n)
    return outcome.AttemptFacts(
        attempt=n, slurm_job_id=job.slurm_job_id, slurm_state=state, slurm_restarts=restarts, slurm_reason=reason,
        time_limit=entry.time_limit if entry else "", started=started,
        ended=ended, result=read_json(files.result), stopped=read_json(files.stopped),
        cancel_requested=job.state == J.CANCELLING or files.cancel_request.exists(),
        log_text=log, nproc=job.nproc, run_dir=files.path, checkpoint_saved=run.has_checkpoint())


class SubmitRefused(JobError):
    """sbatch refused the job (a partition, account or limit the cluster does not accept): exit code 2."""


class SlurmExecutor:
    name = "slurm"
    schedules_itself = True  # Slurm queues it: the launcher's GPU leases and queue do not apply

    # ---- before the job exists -------------------------------------------------------------------------
    def allocate(self, ws: Workspace, spec) -> tuple[list, int]:
        """No GPU lease here (Slurm allocates them): checks the Slurm spec and the shared workspace."""
        if not isinstance(spec.slurm, SlurmSpec):
            raise InputError(problems=[Problem("--slurm", Msg("cluster.no_spec"))], title=Msg("cli.launch_title"))
        check_submit(ws, spec.slurm)
        return [], spec.slurm.world_size

    def prepare_run(self, run_dir: Path, spec, command: str) -> tuple[str, int]:
        """Record what the job asks for (slurm/spec.json); the config's header, and the processes each
        node's torchrun starts (the batch script adds the rendezvous)."""
        write_spec(run_dir, spec.slurm)
        run = RunDir(run_dir)
        header = (f"Danlu run {run.path.name} on a Slurm cluster. Submit a new run like it with:\n  {command}\n"
                  f"The job as submitted: {run.sbatch}")
        return header, spec.slurm.procs_per_node

    def read_spec(self, run_dir) -> SlurmSpec:
        return read_spec(Path(run_dir))

    def job_file(self, run_dir) -> str:
        return str(RunDir(run_dir).sbatch)

    # ---- start ----------------------------------------------------------------------------------------
    def script_job(self, ws: Workspace, job: J.Job) -> ScriptJob:
        from core.demo_model import is_builtin
        run = RunDir(job.run_dir)
        needs = read_json(run.prepare).get("builtin_models") or []
        argv = job.argv_list  # the torchrun command each node runs: python -m torch.distributed.run ... -m MODULE
        module = argv[len(argv) - argv[::-1].index("-m")] if argv.count("-m") > 1 else "core.recipes.train"
        return ScriptJob(job_id=job.id, run_dir=run.path, workspace=ws.root, repo=REPO_ROOT, python=sys.executable,
                         spec=read_spec(run.path), module=module, resume="--resume" in argv,
                         prepare_demo_model=any(is_builtin(n) for n in needs), env=read_json(run.launch_env),
                         name=job.name)

    def start(self, ws: Workspace, job: J.Job) -> dict:
        """Write job.sbatch and submit it; the job-table fields that identify it on the cluster."""
        run = RunDir(job.run_dir)
        atomic_write_text(run.sbatch, render(self.script_job(ws, job)))
        slurm_id = commands.submit(run.sbatch)
        write_json(run.slurm / "submitted.json", dict(slurm_job_id=slurm_id, job_id=job.id, time=time.time(),
                                                      command=["sbatch", "--parsable", str(run.sbatch)]))
        forget_cache()
        return dict(slurm_job_id=slurm_id)

    def submit(self, ws: Workspace, job: J.Job) -> J.Job:
        """sbatch the job now: Slurm queues it. A refusal ends the job as Failed (submit_failed) and is
        raised with Slurm's words."""
        store = J.JobStore(ws.db_path)
        try:
            store.update(job.id, **self.start(ws, job))
        except DanluError as e:
            store.transition(job.id, J.FAILED, reason="submit_failed",
                             message=Msg("cluster.refused", message=e.msg), hint=e.hint_msg)
            raise SubmitRefused(Msg("cluster.refused_job", id=job.id, message=e.msg), e.hint_msg) from None
        return store.get(job.id)

    # ---- watching -------------------------------------------------------------------------------------
    def entry(self, job: J.Job, active_ids: list[str] = ()) -> QueueEntry | None:
        return own_entry(job, queue_now([job.slurm_job_id, *active_ids]))

    def poll(self, job: J.Job) -> str:
        """core.executors' OWNED while Slurm holds this attempt (queued or running), GONE once it is over."""
        if not job.slurm_job_id:
            return GONE
        return GONE if gather(job, self.entry(job)).over else OWNED

    def track(self, ws: Workspace, job: J.Job, jobs: list[J.Job] = ()) -> bool:
        """Bring one Slurm job's row in line with Slurm and its run folder; True when its state changed.
        A cluster that does not answer leaves the job as it is (the next reconcile asks again)."""
        if not job.slurm_job_id:
            return False
        try:
            return self._track(ws, job, [j.slurm_job_id for j in jobs if j.executor == self.name])
        except DanluError as e:
            print(f"[danlu] job {job.id}: Slurm could not be asked about it: {e}", file=sys.stderr)
            return False

    def _track(self, ws: Workspace, job: J.Job, active_ids: list[str]) -> bool:
        store = J.JobStore(ws.db_path)
        facts = gather(job, self.entry(job, active_ids))
        if facts.over:
            return self.finish(store, job, facts)
        if job.state == J.CANCELLING:
            self.enforce_grace(job)
            return False
        if facts.slurm_state in outcome.WAITING:
            # Slurm's reason code (Resources, Priority, ...) and its words: the page shows them translated
            key = (facts.slurm_reason or "None").split(",")[0].strip()
            words = commands.pending_words(facts.slurm_reason)
            if job.state == J.QUEUED and (job.message, job.reason) != (str(words), key):
                store.update(job.id, message=words, reason=key)
            return False
        changed = False
        if job.state == J.QUEUED and facts.slurm_state in outcome.STARTING | outcome.RUNNING:
            changed = store.transition(job.id, J.STARTING, message=None, reason="")
        if facts.slurm_state in outcome.RUNNING and store.get(job.id).state == J.STARTING:
            changed = store.transition(job.id, J.RUNNING) or changed
        return changed

    def finish(self, store: J.JobStore, job: J.Job, facts: outcome.AttemptFacts) -> bool:
        """Record how the attempt ended (exit.json, error.json) and its state; list a requeued attempt."""
        state, info = outcome.outcome(facts)
        rc = facts.ended.get("returncode") if facts.ended else None
        files = attempt_files(job)
        write_json(files.exit, dict(job_id=job.id, returncode=rc, state=state, ended_at=time.time(),
                                    slurm_job_id=job.slurm_job_id, slurm_state=facts.slurm_state,
                                    attempt=facts.attempt, **info))
        if state == J.FAILED:
            add_to_json(files.error, info)
        if job.state == J.QUEUED and (facts.started or J.QUEUED not in J.ALLOWED_FROM[state]):
            self.ran_unseen(store, job, facts)
        moved = store.transition(job.id, state, exit_code=rc, reason=info.get("reason", ""),
                                 message=recorded(info, "message"), hint=recorded(info, "hint"))
        if facts.requeued and state == J.INTERRUPTED:
            self.next_attempt(store, job)
        return moved

    @staticmethod
    def ran_unseen(store: J.JobStore, job: J.Job, facts: outcome.AttemptFacts) -> None:
        """The attempt started and ended while no Danlu looked (a --detach run, the GUI closed, a short
        job), or Slurm gave it nodes that failed (NODE_FAIL, BOOT_FAIL): record that it was started (and
        ran, as its start record says), so that it may end Succeeded or Interrupted (neither follows
        Queued: the job stayed Queued for good, its result unrecorded)."""
        store.transition(job.id, J.STARTING, message=None, reason="")
        if facts.started:
            store.transition(job.id, J.RUNNING, started_at=facts.started.get("started") or time.time())

    def next_attempt(self, store: J.JobStore, job: J.Job) -> J.Job:
        """The job row of the attempt Slurm runs next (it resumes from the checkpoint by itself)."""
        new_id = next_attempt_id(job.id)
        if store.get(new_id) is None:
            argv = job.argv_list + ([] if "--resume" in job.argv_list else ["--resume"])
            store.create(id=new_id, kind=job.kind, name=job.name, run_dir=job.run_dir, config_path=job.config_path,
                         config_sha256=job.config_sha256, dataset_sha256=job.dataset_sha256, argv=argv, gpus=[],
                         nproc=job.nproc, parent_id=job.id, executor=self.name, slurm_job_id=job.slurm_job_id,
                         message=Msg("cluster.requeued"))
        return store.get(new_id)

    # ---- stopping ---------------------------------------------------------------------------------------
    def stop(self, ws: Workspace, job: J.Job, grace: float) -> J.Job:
        """Stop: a pending job is simply cancelled (nothing ran); a running one saves and stops, and its
        end is recorded by track() once Slurm has let go of it."""
        store = J.JobStore(ws.db_path)
        was_queued = job.state == J.QUEUED
        store.transition(job.id, J.CANCELLING)
        if self.cancel(ws, store.get(job.id), grace) == "dequeued" and was_queued:
            store.transition(job.id, J.CANCELLED, reason="cancelled", message=Msg("end.cancelled_before"))
        return store.get(job.id)

    def cancel(self, ws: Workspace, job: J.Job, grace: float) -> str:
        """Ask the ranks to save and stop (through the batch shell): "signalled". A job that has not
        started is cancelled in Slurm's queue: "dequeued". "" when Slurm has nothing of it to stop."""
        write_json(attempt_files(job).cancel_request, {"time": time.time(), "grace": grace})
        if not job.slurm_job_id:
            return ""
        entry = own_entry(job, queue_now([job.slurm_job_id], fresh=True))
        forget_cache()
        if entry is None or entry.state in outcome.ENDED:
            return ""
        if entry.state in outcome.WAITING and entry.restarts <= attempt_of(job.id)[1]:
            commands.kill_job(job.slurm_job_id, slurm_name(job))  # nothing has started: nothing to save
            return "dequeued"
        commands.signal_job(job.slurm_job_id, slurm_name(job), batch=True)
        return "signalled"

    def enforce_grace(self, job: J.Job) -> None:
        """Stop was pressed `grace` seconds ago and the job still runs: Slurm's own cancel (SIGTERM, SIGKILL)."""
        req = read_json(attempt_files(job).cancel_request)
        if req and time.time() - float(req.get("time", 0)) > float(req.get("grace", 30)) + KILL_AFTER_S:
            commands.kill_job(job.slurm_job_id, slurm_name(job))

    def sweep(self, job: J.Job) -> bool:
        if not job.slurm_job_id:
            return True
        commands.kill_job(job.slurm_job_id, slurm_name(job))
        entry = own_entry(job, queue_now([job.slurm_job_id], fresh=True))
        return entry is None or entry.state in outcome.ENDED

    def logs(self, job: J.Job) -> Path:
        return RunDir(job.run_dir).stdout_log


def spec_for(ws: Workspace, **overrides) -> SlurmSpec:
    """settings.yaml's `slurm:` defaults with the CLI's or the page's values on top (None: keep the default)."""
    from core.paths import _settings
    from core.slurm.spec import settings_spec, with_overrides
    return with_overrides(settings_spec(_settings(ws)), **overrides)


def check_submit(ws: Workspace, spec: SlurmSpec) -> None:
    """Before a job is created: the spec's problems and a workspace the nodes cannot see, all at once."""
    from core.slurm import shared
    problems = [Problem(label, Msg("cluster.path_char", path=str(path)), Msg("cluster.path_char.hint"))
                for label, path in (("workspace", ws.root), ("Danlu", REPO_ROOT)) if set(str(path)) & set('"\n\r')]
    problems += spec.problems()
    if not problems and commands.controller_down():  # refused at once (sinfo would wait ~10 s to fail)
        raise InputError(problems=[Problem("--slurm", Msg("cluster.controller_down"), Msg("cluster.controller_down.hint"))],
                         title=Msg("cluster.unreachable_title"))
    if not problems:
        try:
            nodes = commands.partition_nodes(spec.partition)
            if nodes is None:
                names = commands.partition_names()
                problems = [Problem("--partition", Msg("cluster.no_partition", name=repr(spec.partition)),
                                    Msg("cluster.partitions.hint", names=", ".join(names)) if names
                                    else Msg("cluster.no_partitions.hint"))]
            elif spec.nodes > len(set(nodes)):
                # sbatch takes it (unless the admin set EnforcePartLimits) and it waits, PartitionConfig, for good
                problems = [Problem("--nodes", Msg("cluster.too_many_nodes", nodes=spec.nodes, n=len(set(nodes))),
                                    Msg("cluster.too_many_nodes.hint"))]
            elif spec.time and (limit := commands.partition_time_limit(spec.partition)) and spec.time_seconds() > limit:
                # the same for a time limit above the partition's: it waits, PartitionTimeLimit, for good
                problems = [Problem("--time", Msg("cluster.time_over_limit", time=spec.time, limit=format_time(limit)),
                                    Msg("cluster.time_over_limit.hint"))]
        except DanluError as e:
            raise InputError(problems=[Problem("--slurm", e.msg, e.hint_msg)],
                             title=Msg("cluster.unreachable_title")) from None
        problems = problems or shared.problems({"workspace": ws.root, "Danlu": REPO_ROOT}, nodes)
    if problems:
        raise InputError(problems=problems, title=Msg("cluster.submit_title"))
