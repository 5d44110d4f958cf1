"""`cluster`: the Slurm cluster this computer submits to, as `train --slurm` and the page see it: its
partitions with their free GPUs (sinfo), and the defaults a job takes from settings.yaml."""
from __future__ import annotations

import dataclasses
import json


def register(sub):
    p = sub.add_parser("cluster", help="the Slurm cluster's partitions, their free GPUs, and the job defaults")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cluster_cmd)


def cluster_cmd(args, services) -> int:
    from core.slurm import commands
    from core.slurm.executor import spec_for
    spec = spec_for(services.workspace)  # settings.yaml's slurm: (its problems, if any, come first)
    parts = commands.partitions()
    if args.json:
        print(json.dumps({"partitions": [dataclasses.asdict(p) for p in parts], "defaults": dataclasses.asdict(spec)},
                         indent=2))
        return 0
    for p in parts:
        print(p.label())
    print("defaults (settings.yaml, slurm:): " + " ".join(spec.cli_flags()[1:]))
    return 0
