"""What was alive on the GPU at the peak of a recorded training step, grouped by where it was made.

    DANLU_MEMORY_SNAPSHOT=/tmp/snap.json python bench/danlu_run.py ...   # or python app.py train cfg.yaml
    python bench/memory_peak.py /tmp/snap.json [--top 25]

The snapshot (torch.cuda.memory._snapshot(), written as JSON by core/engine/memory_trace.py) holds the allocator's history since recording began
(core/engine/memory_trace.py starts it before the first step) and the blocks alive when it was
written. Replaying the history gives the allocated bytes at every event; what was allocated before
recording began (the weights, mostly) is the blocks alive at the end minus what the history added.
Each allocation alive at the peak is charged to the innermost frame of Danlu's code (core/), else
to the innermost frame of any Python file, so a buffer of a compiled kernel reads as the generated
file and its caller.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict


def live_at_peak(snapshot: dict, device: int = 0) -> tuple[int, int, dict[int, dict]]:
    """(bytes alive before recording, peak bytes, {addr: alloc event alive at the peak})."""
    trace = snapshot["device_traces"][device]
    end_alive = sum(b["size"] for seg in snapshot["segments"] if seg.get("device", 0) == device
                    for b in seg["blocks"] if b["state"] == "active_allocated")
    live: dict[int, dict] = {}
    now = peak = 0
    peak_live: dict[int, dict] = {}
    for ev in trace:
        if ev["action"] == "alloc":
            live[ev["addr"]] = ev
            now += ev["size"]
            if now > peak:
                peak, peak_live = now, dict(live)
        elif ev["action"] == "free_completed" and ev["addr"] in live:
            now -= live.pop(ev["addr"])["size"]
    before = end_alive - now  # what the history did not make
    return before, before + peak, peak_live


def where(ev: dict) -> str:
    frames = ev.get("frames") or []
    ours = [f for f in frames if "/core/" in f["filename"]]
    inner = [f for f in frames if f["filename"].endswith(".py")]
    pick = (ours or inner or frames or [dict(filename="?", line=0, name="?")])[0]
    top = inner[0] if inner else pick
    label = f"{short(pick)}"
    return label if top is pick else f"{label} <- {short(top)}"


def short(f: dict) -> str:
    name = f["filename"]
    for cut in ("/site-packages/", "/core/", "/torchinductor"):
        if cut in name:
            name = cut.strip("/") + "/" + name.split(cut, 1)[1]
            break
    return f"{name}:{f['line']} {f['name']}"


def report(snapshot: dict, top: int = 25) -> str:
    before, peak, live = live_at_peak(snapshot)
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ev in live.values():
        g = groups[where(ev)]
        g[0] += ev["size"]
        g[1] += 1
    gib = 2 ** 30
    lines = [f"peak {peak / gib:.2f} GiB = {before / gib:.2f} GiB allocated before recording + "
             f"{(peak - before) / gib:.2f} GiB made during the recorded steps ({len(live)} blocks alive at the peak)",
             f"{'GiB':>7} {'blocks':>6}  made at (innermost Danlu frame <- innermost Python frame)"]
    for label, (size, n) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]:
        lines.append(f"{size / gib:7.3f} {n:6d}  {label}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snapshot")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    with open(args.snapshot) as f:
        sys.stdout.write(report(json.load(f), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
