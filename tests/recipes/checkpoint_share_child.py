"""One rank of a two-machine job at resume (RANK, GROUP_RANK, MASTER_PORT from the test): agree on the
checkpoint of its own run folder (argv[1]) with the other rank, over gloo. Prints a JSON report."""
import json
import sys
from pathlib import Path

import torch.distributed as dist

from core.engine.common import setup_dist
from core.engine.train_state import CheckpointMissing, agreed_checkpoint

d = setup_dist()
try:
    path = agreed_checkpoint(Path(sys.argv[1]), d)
    report = dict(path=str(path) if path else None)
except CheckpointMissing as e:
    report = dict(code=e.msg.code, message=e.message, hint=e.hint)
print(json.dumps(report), flush=True)
dist.destroy_process_group()
