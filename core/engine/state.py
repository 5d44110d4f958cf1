"""The state of one training run between its steps: what core/recipes/train.py builds in its set-up
and each step, log, validation and save reads or advances. Helpers take this object instead of a
dozen positional arguments.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from core.rundir import RunDir


def new_window() -> dict:
    """What a log line averages: the loss and the method's metric sums (a tensor, or None) over
    `units` (answer tokens or pairs, all ranks), real tokens, since time t."""
    return dict(loss=0.0, units=0, tokens=0, t=time.time(), sums=None)


@dataclass
class Run:
    """Everything one training run holds between its steps."""
    cfg: object
    d: object
    run_dir: Path
    tok: object
    method: object                # core.engine.methods: SFT, DPO or ORPO (its batch and its loss)
    model: object                 # the PEFT model
    net: object                   # what the batches go through: the model, DDP or FSDP around it
    fsdp: bool
    trainable: list
    train_seqs: list              # the method's training items (sequences, or pairs)
    val_seqs: list
    width: int | None             # packed batches: the one width of the run (sft_data.batch_width)
    data_info: dict
    dataset_sha: str
    steps_per_epoch: int
    total_steps: int
    info: dict                    # run_info.json: speed features, memory plan, sharding
    t_start: float
    records: bool = True          # this process writes progress, metrics and the end here (common.keeps_record)
    opt: object = None
    sched: object = None
    autocast: object = None
    offload: object = None
    step: int = 0
    last_saved: int = 0
    bad_logs: int = 0
    epoch: int = 0
    grad_norm: object = None
    stop: object = None
    window: dict = field(default_factory=new_window)
    last_eval: dict = field(default_factory=dict)  # the newest validation's method metrics (eval_<name>)

    @property
    def files(self) -> RunDir:
        return RunDir(self.run_dir)

    @property
    def metrics_path(self) -> Path:
        return self.files.metrics

    @property
    def progress_path(self) -> Path:
        return self.files.progress

    @property
    def eval_net(self):
        """Validation runs through FSDP's root (it gathers the weights); with DDP, through the model itself."""
        return self.net if self.fsdp else self.model
