"""The batch script of a Slurm job, written into the run folder as job.sbatch.

It is the whole job, meant to be read by the user's cluster admin: every resource is an #SBATCH
line at the top, every command is spelled out, and `sbatch RUN/job.sbatch` runs it again by hand.
What it does, attempt by attempt (Slurm counts requeues in SLURM_RESTART_COUNT):

  1. records the attempt (slurm/SLURMID.attempt-N.json); a requeued attempt first moves the
     previous one's own files (error.json, stopped.json, ...) to attempts/<previous Danlu job id>/ and resumes;
  2. with several nodes, checks that every node sees the run folder (a shared filesystem);
  3. builds the built-in demo model once, on the first node, before any training process starts
     (the ranks only load it; a build inside the process group would be corrupt);
  4. `srun` starts one torchrun per node; torchrun starts the training processes, which meet at the
     first node (`scontrol show hostnames`, c10d rendezvous; one node uses --standalone);
  5. Stop (scancel --batch --signal=TERM: SIGTERM) and the time limit (--signal=B:USR1@N: SIGUSR1,
     so that the two are told apart) reach only this shell: it passes SIGTERM to the job steps
     (`scancel --signal=TERM`), every rank finishes its step and saves a checkpoint; after a time
     limit or a preemption, with requeue on, it asks Slurm to requeue. A SIGTERM without Danlu's
     cancel.request is a preemption when Slurm set the job's PreemptTime (with a grace time only the
     job steps get it: the shell asks once srun has ended), else a cancel from outside (a plain
     `scancel`): the ranks save and stop as well, and nothing is requeued;
  6. records how the attempt ended (slurm/SLURMID.attempt-N.end.json) and exits.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from core import knobs
from core.rundir import ATTEMPT_FILES, RunDir  # a requeued attempt moves ATTEMPT_FILES aside first
from core.slurm.spec import SlurmSpec, format_time, warn_seconds

# NVLink multicast off: it can take a shared host's GPUs out of service (as for local jobs)
FIXED_ENV = {"PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false",
             "NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}
FIRST_ATTEMPT_ONLY = (knobs.FAULT,)  # test-only fault injection: a resumed attempt runs without it


@dataclass
class ScriptJob:
    """What the script needs to know about one Danlu job."""
    job_id: str
    run_dir: Path
    workspace: Path
    repo: Path
    python: str
    spec: SlurmSpec
    module: str = "core.recipes.train"
    resume: bool = False             # a Danlu Resume: even the first attempt continues from a checkpoint
    prepare_demo_model: bool = False
    env: dict = field(default_factory=dict)
    name: str = ""


def q(value) -> str:
    return shlex.quote(str(value))


def render(job: ScriptJob) -> str:
    spec = job.spec
    parts = [_header(job), _sbatch_lines(job), _environment(job), _helpers(job), _attempt_start(job)]
    if spec.nodes > 1:
        parts.append(_shared_check(job))
    if job.prepare_demo_model:
        parts.append(_prepare(job))
    parts += [_launch(job), _finish(job)]
    return "\n".join(parts)


def _header(job: ScriptJob) -> str:
    spec = job.spec
    per_node = f"{spec.procs_per_node} training process{'es' if spec.procs_per_node != 1 else ''}"
    devices = f"{spec.gpus_per_node} GPU{'s' if spec.gpus_per_node != 1 else ''} per node" if spec.gpus_per_node \
        else "CPUs only"
    return (f"#!/bin/bash\n"
            f"# Danlu job {job.job_id}{': ' + job.name if job.name else ''}\n"
            f"# Written by Danlu into the job's run folder; this file is the whole job. Run it again by hand with\n"
            f"#   sbatch {q(RunDir(job.run_dir).sbatch)}\n"
            f"# {spec.nodes} node{'s' if spec.nodes != 1 else ''} x {per_node} ({devices}), "
            f"{spec.world_size} in all: srun starts one torchrun per node, torchrun starts the processes.\n"
            f"# They read and write only {job.run_dir} and the workspace {job.workspace},\n"
            f"# which every node must see at the same path (a shared filesystem), as well as {job.repo}.\n#")


def job_name(first_id: str) -> str:
    """The Slurm job's name: how Danlu knows its job from another of the same number (core.slurm.commands)."""
    return f"danlu-{first_id}"


def _sbatch_lines(job: ScriptJob) -> str:
    spec = job.spec
    lines = [f"--job-name={job_name(job.job_id)}", f"--nodes={spec.nodes}",
             "--ntasks-per-node=1" + _why("one torchrun per node")]
    if spec.gpus_per_node:
        lines.append(f"--gpus-per-node={spec.gpus_per_node}")
    lines.append(f"--cpus-per-task={spec.cpus}" + _why("for each node's torchrun and its processes"))
    if spec.mem:
        lines.append(f"--mem={spec.mem}")
    if spec.time:
        lines.append(f"--time={format_time(spec.time_seconds())}")
    for name in ("partition", "account", "qos"):
        if getattr(spec, name):
            lines.append(f"--{name}={getattr(spec, name)}")
    lines.append(f"--signal=B:USR1@{warn_seconds(spec)}" + _why("before the time limit: save a checkpoint"))
    lines.append("--requeue" if spec.requeue else "--no-requeue")
    # in double quotes: sbatch splits an #SBATCH line at spaces, and a workspace path may have them
    lines += [f'--output="{RunDir(job.run_dir).stdout_log}"', "--open-mode=append", f'--chdir="{job.repo}"']
    text = "\n".join(f"#SBATCH {line}" for line in lines)
    if spec.extra_sbatch:
        text += "\n# from settings.yaml (slurm.extra_sbatch):\n" + "\n".join(spec.sbatch_lines())
    return text + "\n"


def _why(comment: str) -> str:
    """A comment after an #SBATCH option, lined up (sbatch ignores text after ' #')."""
    return " " * 4 + "# " + comment


def _environment(job: ScriptJob) -> str:
    env = {knobs.HOME: job.workspace, knobs.JOB_ID: job.job_id, "PYTHONPATH": job.repo, **FIXED_ENV}
    extra = {k: v for k, v in job.env.items() if k not in FIRST_ATTEMPT_ONLY}
    lines = ["set -u", f"RUN={q(job.run_dir)}", f"PY={q(job.python)}",
             "ATTEMPT=${SLURM_RESTART_COUNT:-0}   # 0 the first time; Slurm counts each requeue",
             f"FIRST_ID={q(job.job_id)}",
             f"REQUEUE={1 if job.spec.requeue else 0}   # after a time limit or a preemption: resubmit and resume"]
    # sbatch passes the submitting shell's environment on; of Danlu's own variables only these reach the job
    lines.append('for v in $(compgen -e); do case $v in DANLU_*) unset "$v";; esac; done')
    lines += [f"export {k}={q(v)}" for k, v in {**env, **extra}.items()]
    for key in FIRST_ATTEMPT_ONLY:
        if key in job.env:
            lines.append(f'if [ "$ATTEMPT" = 0 ]; then export {key}={q(job.env[key])}; fi   # tests only')
    if job.spec.setup:
        lines += ["# from settings.yaml (slurm.setup):", *job.spec.setup]
    return "\n".join(lines) + "\n"


def _helpers(job: ScriptJob) -> str:
    return """note() { echo "[danlu] $*"; }
record() {  # record NAME JSON: written whole, then renamed, so Danlu never reads half a file
  mkdir -p "$RUN/slurm" && printf '%s\\n' "$2" > "$RUN/slurm/.$1.tmp" && mv -f "$RUN/slurm/.$1.tmp" "$RUN/slurm/$1"
}
STOP=""
on_stop() {  # on_stop WHY: every training process saves a checkpoint and stops
  [ -n "$STOP" ] && return
  STOP=$1
  note "stop requested ($STOP): every training process saves a checkpoint and stops"
  scancel --signal=TERM "$SLURM_JOB_ID"   # the job steps only (each torchrun and its processes), not this shell
}
preempted() {  # Slurm takes the nodes for another job: it set the job's PreemptTime (a plain scancel does not)
  scontrol show job "$SLURM_JOB_ID" 2>/dev/null | grep -q 'PreemptTime=[0-9]'
}
# SIGTERM: Stop in Danlu (it wrote cancel.request first), a preemption, else a cancel from outside (scancel)
on_term() {
  if [ -e "$RUN/cancel.request" ]; then on_stop cancel; elif preempted; then on_stop preempted; else on_stop outside; fi
}
trap on_term TERM
trap 'on_stop time_limit' USR1   # --signal=B:USR1@N: the time limit is near
"""


def _attempt_start(job: ScriptJob) -> str:
    moved = " ".join(ATTEMPT_FILES)
    resume = "--resume" if job.resume else ""
    return f"""note "Slurm job $SLURM_JOB_ID, attempt $ATTEMPT, on $SLURM_JOB_NODELIST, started $(date '+%F %T')"
record "$SLURM_JOB_ID.attempt-$ATTEMPT.json" "{{\\"slurm_job_id\\": \\"$SLURM_JOB_ID\\", \\"attempt\\": $ATTEMPT, \\"nodes\\": \\"$SLURM_JOB_NODELIST\\", \\"started\\": $(date +%s)}}"
RESUME={q(resume) if resume else '""'}
if [ "$ATTEMPT" -gt 0 ]; then  # requeued: keep the previous attempt's files apart, continue from its checkpoint
  PREV=$FIRST_ID; [ "$ATTEMPT" -gt 1 ] && PREV="$FIRST_ID-r$((ATTEMPT - 1))"
  mkdir -p "$RUN/attempts/$PREV"
  for f in {moved}; do [ -e "$RUN/$f" ] && mv -f "$RUN/$f" "$RUN/attempts/$PREV/"; done
  RESUME=--resume
fi
ended() {{  # ended EXIT_CODE STOP [REQUEUE]: record how this attempt ended
  record "$SLURM_JOB_ID.attempt-$ATTEMPT.end.json" "{{\\"slurm_job_id\\": \\"$SLURM_JOB_ID\\", \\"attempt\\": $ATTEMPT, \\"returncode\\": $1, \\"stop\\": \\"$2\\", \\"requeue\\": ${{3:-0}}, \\"ended\\": $(date +%s)}}"
}}
finish() {{ ended "$@"; exit "$1"; }}
"""


def _shared_check(job: ScriptJob) -> str:
    return """# Every node must see the run folder: the training processes write their files there.
if ! srun --ntasks-per-node=1 test -r "$RUN/config.yaml"; then
  note "a node cannot read $RUN/config.yaml: the workspace is not on a filesystem shared by all nodes"
  finish 3 not_shared
fi
"""


def _prepare(job: ScriptJob) -> str:
    return """# The built-in demo model is built here, once, before any training process starts (they only load it).
"$PY" -m core.demo_model --workspace "$DANLU_HOME" || finish 4 prepare_failed
if [ -n "$STOP" ]; then finish 0 "$STOP"; fi
"""


def _launch(job: ScriptJob) -> str:
    spec = job.spec
    if spec.nodes > 1:
        rendezvous = (f'HEAD=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)   # the first node\n'
                      f'PORT=$((20000 + SLURM_JOB_ID % 10000))\n')
        meet = (f'--nnodes={spec.nodes} --nproc-per-node={spec.procs_per_node} \\\n'
                f'    --rdzv-backend=c10d --rdzv-endpoint="$HEAD:$PORT" --rdzv-id="$SLURM_JOB_ID" \\\n')
    else:
        rendezvous = ""
        meet = f'--standalone --nproc-per-node={spec.procs_per_node} \\\n'
    return (f"# One torchrun per node; its processes meet the other nodes' at the first node.\n{rendezvous}"
            f'srun --ntasks-per-node=1 --cpus-per-task={spec.cpus} --kill-on-bad-exit=1 \\\n'
            f'  "$PY" -m torch.distributed.run {meet}'
            f'    --max-restarts=0 --log-dir="$RUN/ranks" --redirects=3 --tee=3 \\\n'
            f'    -m {job.module} --config "$RUN/config.yaml" $RESUME &\n'
            f'SRUN=$!\n'
            f'# a trap interrupts `wait`: wait again until srun has really ended, then take its exit code\n'
            f'wait "$SRUN"; RC=$?\n'
            f'while kill -0 "$SRUN" 2>/dev/null; do wait "$SRUN"; RC=$?; done\n'
            f'if [ "$RC" -gt 128 ]; then wait "$SRUN" 2>/dev/null; LAST=$?; [ "$LAST" != 127 ] && RC=$LAST; fi\n')


def _finish(job: ScriptJob) -> str:
    return f"""note "training ended with exit code $RC${{STOP:+ (stop: $STOP)}}"
# with a grace time (GraceTime) Slurm sends a preemption's SIGTERM to the job steps only: the ranks
# saved and stopped, srun ended, and this shell heard nothing; Slurm would record the job as ended
if [ "${{STOP:-outside}}" = outside ] && [ ! -e "$RUN/result.json" ] && preempted; then
  STOP=preempted
  note "preempted: Slurm gives the job's nodes to another job"
fi
if [ "$STOP" = time_limit -o "$STOP" = preempted ] && [ ! -e "$RUN/result.json" ] && [ "$REQUEUE" = 1 ]; then
  note "$STOP: requeueing; the next attempt resumes from the newest checkpoint"
  ended "$RC" "$STOP" 1
  scontrol requeue "$SLURM_JOB_ID" && exit 0
  note "Slurm refused to requeue the job (its admin may have turned requeueing off)"
  finish "$RC" "$STOP" -1
fi
if [ -n "$STOP" ] && [ -e "$RUN/stopped.json" -o -e "$RUN/result.json" ]; then finish 0 "$STOP"; fi
finish "$RC" "$STOP"
"""
