"""One rank of a two-machine job at resume (RANK, GROUP_RANK, MASTER_PORT from the test): agree on the
checkpoint of its run folder (argv[1]: its own, or the one both share) with the other rank, over gloo.
Prints a JSON report, with whether this rank checked its folder's copy."""
import json
import sys
from pathlib import Path

import torch.distributed as dist

from core.engine import train_state
from core.engine.common import keeps_record, setup_dist
from core.engine.train_state import CheckpointMissing, agreed_checkpoint

checked = []
holds = train_state.holds
train_state.holds = lambda *a: checked.append(1) or holds(*a)
d = setup_dist()
try:
    run_dir = Path(sys.argv[1])
    path = agreed_checkpoint(run_dir, d, keeps_record(d, run_dir))
    report = dict(path=str(path) if path else None, checked=bool(checked))
except CheckpointMissing as e:
    report = dict(code=e.msg.code, message=e.message, hint=e.hint)
print(json.dumps(report), flush=True)
dist.destroy_process_group()
