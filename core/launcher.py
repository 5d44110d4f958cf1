"""Start, queue, cancel, resume and reconcile jobs. The GUI and the CLI both call only this.

    job = submit_train(ws, cfg, LaunchSpec(nproc=2), origin=trust.SHELL)   # QUEUED, then STARTING when its GPUs are free
    cancel(ws, job.id)                                  # CANCELLING -> CANCELLED when no process is left
    reconcile(ws)                                       # after a restart: reattach, finalise or INTERRUPTED

The launcher decides when a job starts (its GPU leases, the queue) and records how it ended
(states and reasons in the job table); the job's executor (core.executors: today a detached
supervisor on this machine that owns the torchrun agent) runs its processes. Nothing here keeps a
process handle: every fact lives in the job table or the run directory (core.rundir), so any
process can pick up where another left off. The command lines themselves are core.launch_commands.
"""
from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import diagnose
from core import jobs as J
from core import knobs
from core.config import TrainConfig, save_config
from core.risks import config_warnings
from core.errors import InputError, JobError, NotFound, Problem
from core.executors import ORPHANED, OWNED, UNCLAIMED, executor_for
from core.gpus import detect_gpus
from core.launch_commands import TRAIN_MODULE, build_command, cli_command
from core.messages import Msg, recorded
from core.paths import clean_label
from core.rendezvous import master_problems, master_written
from core.rundir import ATTEMPT_FILES, CONFIG, RunDir, check_not_linked, read_json, write_json
from core.workspace import Workspace, pin_dataset, sha256_file

MAX_NPROC = 64  # processes on one machine
RESUMABLE = (J.FAILED, J.CANCELLED, J.INTERRUPTED)  # the ends a run may be resumed from


@dataclass
class LaunchSpec:
    nproc: int | None = None         # processes on this machine (default: one per chosen GPU, or 1)
    gpus: list[int] | None = None    # GPU indices; None = all visible GPUs (or the CPU)
    nnodes: int = 1
    node_rank: int = 0
    master: str | None = None        # "ADDR:PORT" of node 0, for several machines
    env: dict = field(default_factory=dict)  # extra environment (tests: fault injection)
    executor: str = "local"          # where the processes run (core.executors): "local" or "slurm"
    slurm: object = None             # a core.slurm.spec.SlurmSpec: what a Slurm job asks the cluster for

    def problems(self) -> list[Problem]:
        out = []
        if self.nproc is not None and not (1 <= self.nproc <= MAX_NPROC):
            out.append(Problem("--nproc", Msg("launch.nproc", n=self.nproc)))
        if self.nnodes < 1:
            out.append(Problem("--nnodes", Msg("launch.nnodes")))
        if self.nnodes > 1:
            out += master_written(self.master)
            if not (0 <= self.node_rank < self.nnodes):
                out.append(Problem("--node-rank", Msg("launch.node_rank", max=self.nnodes - 1)))
        return out


def resolve_devices(spec: LaunchSpec, busy=()) -> tuple[list, int]:
    """(gpu lease, process count). On a machine without GPUs the lease is ["cpu"] (one job at a time).

    Named GPUs are leased as named. Without names a job takes all visible GPUs, or, when it needs
    fewer, the first ones that no other job holds or waits for (`busy`), so that two 2-GPU jobs on a
    4-GPU machine run side by side instead of queueing behind each other."""
    visible = [g["index"] for g in detect_gpus()]
    if not visible:
        if spec.gpus:
            raise InputError(problems=[Problem("--gpus", Msg("launch.no_gpu"), Msg("launch.no_gpu.hint"))])
        return ["cpu"], spec.nproc or 1
    gpus = spec.gpus if spec.gpus is not None else visible
    missing = [g for g in gpus if g not in visible]
    if missing:
        raise InputError(problems=[Problem("--gpus", Msg("launch.gpu_missing", missing=str(missing), visible=str(visible)))])
    nproc = spec.nproc or len(gpus)
    if nproc > len(gpus):
        raise InputError(problems=[Problem("--nproc", Msg("launch.too_many_procs", n=nproc, gpus=len(gpus)),
                                           Msg("launch.too_many_procs.hint"))])
    if spec.gpus is None and nproc < len(gpus):
        taken = {str(g) for g in busy}
        free = [g for g in gpus if str(g) not in taken]
        if len(free) >= nproc:
            gpus = free
    return gpus[:nproc], nproc


def leased_gpus(store: J.JobStore) -> list:
    """GPUs held by running jobs or claimed by queued ones."""
    return [g for j in store.list(states=[J.QUEUED, *J.ACTIVE]) for g in j.gpu_list]


def check_spec(spec: LaunchSpec) -> None:
    """The launch options, then machine 0's address as this machine finds it (a Slurm job's machine 0
    is the cluster's to pick)."""
    found = spec.problems()
    if not found and spec.nnodes > 1 and spec.executor == "local":
        found = master_problems(spec.master, spec.node_rank)
    if found:
        raise InputError(problems=found, title=Msg("launch.options_title"))


def submit_train(ws: Workspace, cfg: TrainConfig, spec: LaunchSpec | None = None, *, origin: str, name: str = "",
                 parent_id: str = "", module: str = TRAIN_MODULE) -> J.Job:
    """Create the run directory and a QUEUED job, then let the scheduler start it when it can.
    origin: where the config came from (core.trust): from the page its paths must lie inside the
    workspace or the allowed folders; the shell's local user may name any readable file."""
    spec = spec or LaunchSpec()
    check_spec(spec)
    from core import trust
    cfg = trust.check_config(cfg, ws, origin)
    from core.config import validate
    from core.method_check import method_problems, resolve_start_adapter
    from core.models import base_model_problems
    problems = validate(cfg) + method_problems(cfg) + base_model_problems(cfg.base_model, ws)
    if problems:
        raise InputError(problems=problems, title=Msg("launch.config_title"))
    start_adapter = resolve_start_adapter(ws, cfg)  # a job id or folder -> the adapter's absolute path
    store = J.JobStore(ws.db_path)
    executor = executor_for(spec.executor)
    if executor.schedules_itself:  # a cluster allocates the GPUs: no lease here; its spec is checked first
        gpus, nproc = executor.allocate(ws, spec)
    else:
        gpus, nproc = resolve_devices(spec, busy=leased_gpus(store))
    job_id = J.new_id()
    run_dir = ws.run_dir(job_id)
    run_dir.mkdir(parents=True)
    run = RunDir(run_dir)
    pinned, digest = pin_dataset(ws, cfg.dataset)
    run_cfg = TrainConfig(**{**cfg.__dict__, "dataset": str(pinned), "start_adapter": start_adapter})
    # the name people gave their data (the config holds the pinned copy): an export's model card shows it
    write_json(run.dataset_info, dict(source=str(cfg.dataset), pinned=str(pinned), sha256=digest))
    cfg_path = run.config
    header = (f"Danlu run {job_id}. Re-run it from a shell with:\n  {cli_command(cfg_path, nproc, spec)}\n"
              f"or directly:\n  torchrun --standalone --nproc-per-node {nproc} -m {module} --config {cfg_path}")
    argv = build_command(cfg_path, nproc, spec, module=module)
    if executor.schedules_itself:  # it records what the job asks for; argv: the torchrun each node runs
        header, per_node = executor.prepare_run(run_dir, spec, cli_command(cfg_path, nproc, spec))
        argv = build_command(cfg_path, per_node, LaunchSpec(), module=module, single_direct=False)
    warnings = config_warnings(cfg)
    if warnings:  # recorded where people look: the config header and the top of the run's log
        header += "".join(f"\nWARNING: {w}" for w in warnings)  # English: the file is for a shell
        with open(run.stdout_log, "a", encoding="utf-8") as f:
            f.writelines(f"[danlu] WARNING: {w}\n" for w in warnings)
    save_config(run_cfg, cfg_path, header=header)
    write_prepare(run_dir, cfg.base_model)
    env = dict(spec.env)
    if knobs.get(knobs.FAULT) and knobs.FAULT not in env:
        env[knobs.FAULT] = knobs.get(knobs.FAULT)  # tests inject faults through the CLI's environment
    if env:
        write_json(run.launch_env, env)
    job = store.create(id=job_id, kind="train", name=clean_label(name or cfg.run_name or Path(cfg.dataset).stem),
                       run_dir=str(run_dir), config_path=str(cfg_path), config_sha256=sha256_file(cfg_path),
                       dataset_sha256=digest, argv=argv, gpus=gpus, nproc=nproc, parent_id=parent_id,
                       executor=executor.name)
    return _queue(ws, job)


def submit_command(ws: Workspace, kind: str, run_dir: Path, argv: list[str], *, gpus: list | None = None,
                   nproc: int = 1, name: str = "", parent_id: str = "", env: dict | None = None,
                   base_model: str = "") -> J.Job:
    """Queue any other job (evaluation, merge) with its own run dir and argv. base_model: the model
    its processes load (the built-in one is prepared before they start)."""
    store = J.JobStore(ws.db_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_prepare(run_dir, base_model)
    if gpus is None:
        gpus, _ = resolve_devices(LaunchSpec(nproc=nproc), busy=leased_gpus(store))
    if env:
        write_json(RunDir(run_dir).launch_env, env)
    job = store.create(id=run_dir.name if not store.get(run_dir.name) else J.new_id(), kind=kind, name=name,
                       run_dir=str(run_dir), argv=argv, gpus=gpus, nproc=nproc, parent_id=parent_id)
    return _queue(ws, job)


def _queue(ws: Workspace, job: J.Job) -> J.Job:
    """A new QUEUED job handed to whoever starts it: its cluster's queue, or schedule() on this machine."""
    if executor_for(job).schedules_itself:
        return executor_for(job).submit(ws, job)
    schedule(ws)
    return J.JobStore(ws.db_path).get(job.id)


def write_prepare(run_dir: Path, base_model: str) -> None:
    """Record what the supervisor builds before any rank starts (prepare.json): today the built-in
    demo model, which ranks only load (core.demo_model: a build inside torchrun corrupted it)."""
    from core.demo_model import is_builtin
    name = (base_model or "").strip()
    if is_builtin(name):
        write_json(RunDir(run_dir).prepare, {"builtin_models": [name]})


def _overlaps(a: list, b: list) -> bool:
    return bool(set(map(str, a)) & set(map(str, b)))


def schedule(ws: Workspace) -> list[str]:
    """Start every queued job whose GPUs are free, oldest first. Safe to call from any process."""
    store = J.JobStore(ws.db_path)
    started = []
    with store.exclusive() as c:
        active = store.list(states=J.ACTIVE, conn=c)
        busy = [g for j in active for g in j.gpu_list]
        for job in sorted(store.list(states=[J.QUEUED], conn=c), key=lambda j: (j.created_at, j.id)):
            if executor_for(job).schedules_itself:
                continue  # a cluster queues its jobs itself
            if _overlaps(job.gpu_list, busy):
                busy += job.gpu_list  # keep FIFO order per GPU: a later job may not jump the queue
                continue
            if store.transition(job.id, J.STARTING, conn=c):
                store.update(job.id, conn=c, **executor_for(job).start(ws, job))
                busy += job.gpu_list
                started.append(job.id)
    return started


JOB_ID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")


def get_job(ws: Workspace, job_id: str) -> J.Job:
    # Ids are typed by people (short prefixes); anything else - '%' or '_' (SQL LIKE wildcards), a
    # path, NUL - names no job rather than matching one by accident.
    job = J.JobStore(ws.db_path).find(job_id) if isinstance(job_id, str) and JOB_ID_RE.match(job_id) else None
    if job is None:
        raise NotFound(Msg("job.none", id=repr(job_id)), Msg("job.none.hint"))
    return job


def cancel(ws: Workspace, job_id: str, grace: float = 30.0) -> J.Job:
    """Ask a job to stop and return at once (the GUI must not block). Its executor does
    SIGTERM -> grace -> SIGKILL and its owner records CANCELLED once no process is left; a job whose
    owner is gone is swept here."""
    store = J.JobStore(ws.db_path)
    job = get_job(ws, job_id)
    if job.terminal:
        return job
    if executor_for(job).schedules_itself:
        return executor_for(job).stop(ws, job, grace)  # a cluster's queue: the executor records the end
    if job.state == J.QUEUED and store.transition(job.id, J.CANCELLED, reason="cancelled",
                                                  message=Msg("end.cancelled_before")):
        schedule(ws)  # jobs queued behind it may start now
        return store.get(job.id)
    store.transition(job.id, J.CANCELLING)
    executor = executor_for(job)
    executor.cancel(ws, job, grace)
    job = store.get(job.id)
    if job.state == J.CANCELLING and executor.poll(job) != OWNED:
        _sweep_and_cancel(ws, job)
    schedule(ws)
    return store.get(job.id)


def _sweep_and_cancel(ws: Workspace, job: J.Job) -> bool:
    """No owner is left to do it: stop every process of the job, then record it CANCELLED.
    The state changes only when no process of the job is left (else it stays as it is, honestly)."""
    if not executor_for(job).sweep(job):
        return False
    return J.JobStore(ws.db_path).transition(job.id, J.CANCELLED, reason="cancelled", message=Msg("end.cancelled"),
                                             hint=diagnose.resume_hint(job.run_dir))


def wait(ws: Workspace, job_id: str, timeout: float = 3600, poll: float = 0.5) -> J.Job:
    store = J.JobStore(ws.db_path)
    deadline = time.time() + timeout
    while True:
        job = store.get(job_id)
        if job.terminal or time.time() > deadline:
            return job
        reconcile(ws, [job])
        time.sleep(poll)


def reconcile(ws: Workspace, only: list[J.Job] | None = None) -> list[J.Job]:
    """Bring the table in line with reality (at start-up, on every listing, while following a job):
    exit.json present -> its final state; its owner alive (the executor's poll: for a local job, the
    supervisor's pid + start time) -> leave it; the owner gone but training processes alive -> leave
    them to finish (a cancel sweeps them); nothing left -> SUCCEEDED only if the run recorded its
    success, FAILED when a rank recorded why it failed, else INTERRUPTED. Never a false success. A
    job of an executor that queues and records its jobs itself (a Slurm cluster) is brought up to
    date by that executor, queued ones too."""
    store = J.JobStore(ws.db_path)
    changed = []
    jobs = only or store.list(states=[J.QUEUED, *J.ACTIVE])
    for job in jobs:
        job = store.get(job.id)
        if job is not None and not job.terminal and executor_for(job).schedules_itself:
            if executor_for(job).track(ws, job, jobs):
                changed.append(job.id)
            continue
        if job is None or job.state not in J.ACTIVE:
            continue
        run_dir = Path(job.run_dir)
        exit_info = read_json(RunDir(run_dir).exit)
        if exit_info.get("job_id") == job.id and exit_info.get("state") in J.TERMINAL:
            if store.transition(job.id, exit_info["state"], exit_code=exit_info.get("returncode"),
                                reason=exit_info.get("reason", ""), message=recorded(exit_info, "message"),
                                hint=recorded(exit_info, "hint")):
                changed.append(job.id)
            continue
        seen = executor_for(job).poll(job)
        if seen == OWNED:
            continue
        if seen == UNCLAIMED and job.state != J.CANCELLING:
            continue  # schedule() records the owner in the same transaction that marks STARTING; not yet visible
        if seen == ORPHANED:
            if job.state == J.CANCELLING:  # a cancel with no supervisor left to carry it out
                _sweep_and_cancel(ws, job)
                changed.append(job.id)
            continue  # its supervisor died but training runs on; finalised here once its processes end
        if _finalise_orphan(store, job, run_dir):
            changed.append(job.id)
    if changed or only is None:
        schedule(ws)
    return [store.get(j) for j in changed]


def _finalise_orphan(store: J.JobStore, job: J.Job, run_dir: Path) -> bool:
    """A job with no supervisor, no exit.json and no process left: record what the files prove."""
    run = RunDir(run_dir)
    result = read_json(run.result)
    stopped = run.stopped.exists()
    if result.get("status") == "succeeded" and not stopped:
        return store.transition(job.id, J.SUCCEEDED, reason="", message=Msg("end.finished_orphan"))
    if job.state == J.CANCELLING:
        return store.transition(job.id, J.CANCELLED, reason="cancelled", message=Msg("end.cancelled"),
                                hint=diagnose.resume_hint(job.run_dir))
    if not stopped and any(e.get("reason") != "peer_lost" for e in diagnose.read_rank_errors(run_dir).values()):
        # A rank recorded why it failed, but the supervisor could not record the end: it was killed
        # too, or the disk it writes exit.json to was full (the very failure the rank reported)
        info = diagnose.explain(run_dir, None, "", nproc=job.nproc)
        return store.transition(job.id, J.FAILED, reason=info["reason"], message=recorded(info, "message"),
                                hint=recorded(info, "hint"))
    return store.transition(job.id, J.INTERRUPTED, reason="interrupted", message=Msg("end.vanished"),
                            hint=diagnose.resume_hint(job.run_dir))


def resume(ws: Workspace, job_id: str, *, env: dict | None = None) -> J.Job:
    """A new job that continues a stopped run in the same run directory from its newest complete
    checkpoint (the recipe skips torn or corrupted ones). Refuses, with the reason, when the config
    or the dataset changed since the run started. The previous attempt's files move to
    attempts/<its job id>/. `env`: the launch environment of the new attempt (default: the
    previous one's, without test fault injection)."""
    store = J.JobStore(ws.db_path)
    old = get_job(ws, job_id)
    reconcile(ws, [old])
    old = store.get(old.id)
    if old.kind != "train":
        raise JobError(Msg("job.not_train_resume", id=old.id, kind=old.kind))
    if old.state not in RESUMABLE:
        raise JobError(Msg("job.cannot_resume_state", id=old.id, state=J.state_word(old.state)),
                       Msg("job.wait_or_stop.hint") if not old.terminal else Msg("job.finished_retry.hint"))
    run = RunDir(old.run_dir)
    later = [j for j in store.list() if j.run_dir == old.run_dir and j.id != old.id and j.created_at >= old.created_at]
    if later:
        newest = later[0]
        raise JobError(Msg("job.continued", id=newest.id, state=J.state_word(newest.state)),
                       Msg("job.resume_that.hint" if newest.state in RESUMABLE else "job.see.hint", id=newest.id))
    check_not_linked(run.path, old.id)  # the new attempt would write, and the old one's files move, through it
    problems = resume_problems(old)
    if problems:
        raise InputError(problems=problems, title=Msg("job.resume_title", id=old.id))
    archive = run.attempt(old.id)
    archive.mkdir(parents=True, exist_ok=True)
    previous_env = read_json(run.launch_env)
    for name in ATTEMPT_FILES:
        if (run.path / name).exists():
            shutil.move(str(run.path / name), str(archive / name))
    if env is None:
        env = {k: v for k, v in previous_env.items() if k != knobs.FAULT}
    if env:
        write_json(run.launch_env, env)
    argv = old.argv_list
    if "--resume" not in argv:
        argv = argv + ["--resume"]
    job = store.create(kind="train", name=old.name, run_dir=old.run_dir, config_path=old.config_path,
                       config_sha256=old.config_sha256, dataset_sha256=old.dataset_sha256, argv=argv,
                       gpus=old.gpu_list, nproc=old.nproc, parent_id=old.id, executor=old.executor)
    return _queue(ws, job)  # on a cluster: a new cluster job that continues from the checkpoint


def resume_problems(old: J.Job) -> list[Problem]:
    """Resume needs the very config and dataset the run started with, and the job's command (a job
    rebuilt from a copy whose command Danlu did not make has none: core.job_copies.own_command)."""
    if not old.argv_list:
        return [Problem(CONFIG, Msg("job.no_command"), Msg("job.use_retry.hint"))]
    cfg_path = Path(old.config_path)
    if not cfg_path.exists():
        return [Problem(CONFIG, Msg("job.config_missing", path=str(cfg_path)), Msg("job.use_retry.hint"))]
    problems = []
    if sha256_file(cfg_path) != old.config_sha256:
        problems.append(Problem(CONFIG, Msg("job.config_changed"), Msg("job.config_changed.hint")))
    from core.config import read_yaml
    try:
        dataset = Path(str(read_yaml(cfg_path).get("dataset", "")))
        if not dataset.is_file():
            problems.append(Problem("dataset", Msg("job.config_missing", path=str(dataset)), Msg("job.dataset_missing.hint")))
        elif sha256_file(dataset) != old.dataset_sha256:
            problems.append(Problem("dataset", Msg("job.dataset_changed", path=str(dataset)), Msg("job.dataset_changed.hint")))
    except (InputError, OSError) as e:
        problems.append(Problem(CONFIG, Msg("any.cannot_read", error=str(e))))
    return problems


def retry(ws: Workspace, job_id: str, edits: dict | None = None, spec: LaunchSpec | None = None, *,
          origin: str, module: str = TRAIN_MODULE) -> J.Job:
    """A fresh run (new job, new run directory) from the same config, with edits (e.g. a lower learning rate)."""
    from core.config import from_dict, read_yaml
    old = get_job(ws, job_id)
    if old.kind != "train":
        raise JobError(Msg("job.not_train_retry", id=old.id, kind=old.kind))
    data = read_yaml(old.config_path)
    data.update(edits or {})
    cfg = from_dict(data, source=Msg("job.config_of", id=old.id))
    if spec is None and executor_for(old).schedules_itself:
        spec = LaunchSpec(executor=old.executor, slurm=executor_for(old).read_spec(old.run_dir))
    if spec is None:
        spec = LaunchSpec(nproc=old.nproc, gpus=None if old.gpu_list == ["cpu"] else old.gpu_list, executor=old.executor)
    return submit_train(ws, cfg, spec, origin=origin, name=old.name, parent_id=old.id, module=module)


def delete(ws: Workspace, job_id: str) -> None:
    """Forget a finished job and remove its run directory (unless another job still uses it).
    Refuses while the job is queued or running."""
    store = J.JobStore(ws.db_path)
    job = get_job(ws, job_id)
    reconcile(ws, [job])
    job = store.get(job.id)
    if not job.terminal:
        raise JobError(Msg("job.is_state", id=job.id, state=J.state_word(job.state)), Msg("job.stop_first.hint"))
    check_not_linked(job.run_dir, job.id)  # a link to another run's folder deleted that run's files
    store.delete(job.id)
    if not [j for j in store.list() if j.run_dir == job.run_dir]:
        run_dir = Path(job.run_dir).resolve()
        if run_dir.is_relative_to(ws.runs.resolve()):
            shutil.rmtree(run_dir, ignore_errors=True)
