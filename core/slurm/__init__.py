"""Running Danlu's jobs on a Slurm cluster: the same job, handed to the scheduler people already have.

    spec.py       SlurmSpec: nodes, GPUs per node, CPUs, memory, time limit, partition, account,
                  QoS, requeue, extra #SBATCH lines; defaults from settings.yaml (`slurm:`)
    script.py     the batch script written into the run folder (job.sbatch): readable, reviewable
    commands.py   sbatch / squeue / scontrol / scancel / sinfo through argv lists, and their parsers
    shared.py     is the workspace on a filesystem the cluster's nodes can see?

Nothing here imports torch or gradio. The cluster is whatever the `sbatch`, `squeue`, `scontrol`,
`scancel` and `sinfo` on PATH talk to (with $SLURM_CONF, as every Slurm command does).

What lives where, for one Slurm job (the run folder is shared with the nodes):
    job.sbatch                  the whole job, as submitted (`sbatch job.sbatch` re-runs it by hand)
    slurm/submitted.json        Slurm's job id and the sbatch command (written by Danlu at submit)
    slurm/ID.attempt-N.json     written by the batch script when attempt N of Slurm job ID starts
                                (its nodes, the time)
    slurm/ID.attempt-N.end.json written by the batch script when that attempt ends (srun's exit
                                code, why it stopped, whether it asked Slurm to requeue it)
    stdout.log                  Slurm's --output, appended by every attempt
The recipe's own files (progress.json, metrics.jsonl, checkpoints/, result.json, error.json,
stopped.json) are the same as for a local job and stay the truth for progress, loss and result.
"""
