"""The command lines that start a job: the exact argv of any recipe (what the executor runs:
torchrun, or plain python for one local process), and the `python app.py train ...` line a user would type to run the same job from a shell
(shown by the GUI's Show command and written at the top of the run's config.yaml). `spec` is a
core.launcher.LaunchSpec (not imported: the launcher imports this module).
"""
from __future__ import annotations

import sys
from pathlib import Path

from core import knobs
from core.rundir import RunDir

TRAIN_MODULE = "core.recipes.train"
JOIN_TIMEOUT_S = 600  # torchrun's own default for its static rendezvous, written out so that Danlu can say it


def recipe_command(run_dir: Path, nproc: int, spec, module: str, args: list[str], *,
                     single_direct: bool = True) -> list[str]:
    """The exact argv of any recipe: torchrun, whose ranks' output also lands in <run>/ranks/
    (--log-dir). One process on this machine (single_direct) starts as plain `python -m` instead:
    a recipe of world size 1 needs no rendezvous, and torchrun's own start (a Python process that
    imports torch before it starts the rank: 1 s here, 4 s on the GPU machine) is the one part of a
    start that gives nothing. A Slurm node's command stays torchrun (single_direct=False): its
    rendezvous spans the nodes."""
    if single_direct and nproc == 1 and spec.nnodes == 1:
        return [sys.executable, "-m", module, *args]
    argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--max-restarts", "0",
            "--log-dir", str(RunDir(run_dir).ranks), "--redirects", "3", "--tee", "3"]
    if spec.nnodes > 1:
        host, _, port = spec.master.rpartition(":")
        argv += ["--nnodes", str(spec.nnodes), "--node-rank", str(spec.node_rank), "--master-addr", host,
                 "--master-port", port, "--rdzv-conf", f"timeout={join_timeout_s()}"]
    else:
        argv += ["--standalone"]  # a free rendezvous port of its own, so jobs never collide
    return argv + ["-m", module, *args]


def build_command(config_path: Path, nproc: int, spec, *, module: str = TRAIN_MODULE,
                  resume: bool = False, extra: list[str] | None = None, single_direct: bool = True) -> list[str]:
    """The training recipe's argv (recipe_command); its run directory is the config file's folder."""
    args = ["--config", str(config_path)] + (["--resume"] if resume else []) + list(extra or [])
    return recipe_command(Path(config_path).parent, nproc, spec, module, args, single_direct=single_direct)


def join_timeout_s() -> int:
    """Seconds the machines of a job on several machines wait for each other at the rendezvous."""
    return max(1, round(knobs.number(knobs.JOIN_TIMEOUT_S, JOIN_TIMEOUT_S)))


def nodes_of(argv: list[str]) -> dict | None:
    """{nnodes, node_rank, master, timeout_s} of a job that spans several machines, read back from the
    torchrun options recipe_command wrote (a resume reuses its argv); None for a job on one machine."""
    if is_direct(argv) or "--nnodes" not in argv:
        return None
    head = argv[argv.index("torch.distributed.run") + 1:]
    head = head[:head.index("-m")]  # torchrun's own options, before the recipe's module and its arguments
    opts = {k: v for k, v in zip(head, head[1:]) if k.startswith("--")}
    conf = dict(kv.partition("=")[::2] for kv in opts.get("--rdzv-conf", "").split(",") if kv)
    nnodes = int(opts["--nnodes"])
    if nnodes < 2:
        return None
    return dict(nnodes=nnodes, node_rank=int(opts.get("--node-rank", 0)),
                master=f"{opts.get('--master-addr')}:{opts.get('--master-port')}",
                timeout_s=int(conf.get("timeout") or JOIN_TIMEOUT_S))


def join_minutes(nodes: dict) -> str:
    """nodes_of's timeout in minutes, as the messages say it: "10", "0.1"."""
    return f"{nodes['timeout_s'] / 60:.1f}".removesuffix(".0")


def is_direct(argv: list[str]) -> bool:
    """The job's process is its only rank (no torchrun agent between)."""
    return "torch.distributed.run" not in argv


def cli_command(config_path: Path, nproc: int, spec) -> str:
    """What the user would type; shown by the GUI's Show command and written into config.yaml."""
    parts = ["python", "app.py", "train", str(config_path)]
    if spec.slurm is not None:
        return " ".join(parts + spec.slurm.cli_flags())
    if nproc > 1:
        parts += ["--nproc", str(nproc)]
    if spec.gpus is not None:
        parts += ["--gpus", ",".join(str(g) for g in spec.gpus)]
    if spec.nnodes > 1:
        parts += ["--nnodes", str(spec.nnodes), "--node-rank", str(spec.node_rank), "--master", spec.master]
    return " ".join(parts)
