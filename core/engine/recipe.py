"""run_recipe(): what every recipe's main() does around its work, written once.

    rank set-up        setup_dist() (NCCL on GPUs, gloo on CPU; plain python is world 1), or none
                       for a single-process recipe (merge); a set-up failure is recorded like any other
    failure record     any exception: errors/rank<R>.json and, for the first rank, error.json with
                       a reason, words and a hint (common.record_failure, core.failures' table),
                       one line on stderr, then the exception goes on
    exit codes         0: done (or stopped on request, which is not a failure); what the body
                       returns otherwise (merge: 1 when a written format failed its check); 1 with
                       the traceback in the log when it raised (torchrun and the supervisor see a
                       failed rank; the diagnosis reads error.json); SystemExit(1), no traceback,
                       for a worded error (core.errors.DanluError: bad data, a diverged loss)

    def main(argv=None) -> int:
        args = parse_args(argv)
        return run_recipe(lambda ctx: work(args, ctx), failure_dir=RUN)
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.engine.common import Dist, record_failure, setup_dist
from core.errors import DanluError


@dataclass
class RecipeContext:
    """What the body gets: its process (None for single-process recipes) and a place to put the
    settings once read, so a failure's hint can use them (an out-of-memory hint names the batch size)."""
    d: Dist | None
    cfg: object = None


def run_recipe(body: Callable[[RecipeContext], int], failure_dir: Path, *, distributed: bool = True,
               who: str | None = None, cleanup: Callable[[], None] | None = None,
               passthrough: tuple[type[BaseException], ...] = (), work: str = "train") -> int:
    """Run `body` in this process's rank; record every failure before it ends the process.
    who: how the stderr line names the process ("export"; default "rank R"). work: train, eval or export,
    how a crash is said (common.CRASHED). cleanup: runs on any
    failure first (children that must not outlive it). passthrough: exceptions that are an
    ending, not a failure (a cancelled export)."""
    allocate_in_growing_segments()
    ctx = RecipeContext(None)
    rank = int(os.environ.get("RANK", "0")) if distributed else 0  # known before set-up, which can fail too
    try:
        if distributed:
            ctx.d = setup_dist()  # inside: a bad DANLU_DIST_TIMEOUT_MIN or a dead peer is a recorded failure
            rank = ctx.d.rank
        return body(ctx)
    except BaseException as exc:
        if cleanup is not None:
            cleanup()
        if isinstance(exc, passthrough) or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            raise
        info = record_failure(failure_dir, rank, exc, ctx.cfg, work)
        print(f"[danlu] {who or f'rank {rank}'} failed: {info['reason']}: {info['message']}\n[danlu] hint: {info['hint']}",
              file=sys.stderr, flush=True)
        if isinstance(exc, DanluError):  # worded for people (unusable data, a diverged loss, a full disk):
            raise SystemExit(1) from exc  # the lines above say it all; a traceback under them says nothing more
        raise


def allocate_in_growing_segments() -> None:
    """Ask PyTorch's CUDA allocator to grow its segments instead of keeping fixed blocks, unless the
    person set its configuration. Long rows allocate buffers of many sizes; with fixed blocks an
    8B model at 112k tokens per row ran out of a 24 GiB cap with 4.4 GiB reserved but unused, and
    fitted with 23.1 GiB when the segments grow (H200, docs/performance.md). Read when CUDA first
    allocates, so setting it here, before the body, is in time; it means nothing on a CPU."""
    if not (os.environ.get("PYTORCH_CUDA_ALLOC_CONF") or os.environ.get("PYTORCH_ALLOC_CONF")):
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"
