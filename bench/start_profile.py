"""Where a Danlu start's seconds go before the recipe does anything (issue 20, quick restarts):
fresh-process import times, CUDA's start, torchrun's own start, and Python's import profile.

    python3 bench/start_profile.py --out $OUT/start-profile.json      # on the GPU machine (or here)

Each number is the wall time of a fresh `python -c ...` (so the second of two equal ones shows
what a warm file cache leaves). The import profile lists the modules with the largest cumulative
import time (python -X importtime) of the recipe's imports.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPE_IMPORTS = ("import core.recipes.train, transformers, peft, bitsandbytes, transformers.modeling_utils, "
                  "transformers.models.llama.modeling_llama")
SNIPPETS = [("python", "pass"), ("torch", "import torch"), ("torch again", "import torch"),
            ("torchrun module", "import torch.distributed.run"),
            ("recipe module", "import core.recipes.train"),
            ("recipe + transformers + peft + bitsandbytes", RECIPE_IMPORTS),
            ("the same again", RECIPE_IMPORTS),
            ("compile stack", "import torch._dynamo, torch._inductor.compile_fx"),
            ("torch + CUDA start", "import torch; torch.cuda.init(); torch.zeros(1, device='cuda'); torch.cuda.synchronize()")]


def wall(code: str) -> tuple[float, str]:
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True)
    return round(time.time() - t0, 2), (p.stderr if p.returncode else "")


def torchrun_overhead() -> float:
    """Seconds from starting torchrun (one process, standalone) to its child's first line."""
    with tempfile.TemporaryDirectory() as tmp:
        child = Path(tmp) / "child.py"
        child.write_text("import time; print('T', time.time())\n")
        t0 = time.time()
        p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
                            "--max-restarts", "0", str(child)], capture_output=True, text=True)
        starts = [float(line.split()[-1]) for line in p.stdout.splitlines() if "T " in line]
        return round(starts[0] - t0, 2) if starts else -1.0


def import_profile(top: int, code: str = RECIPE_IMPORTS) -> list[dict]:
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=str(REPO), capture_output=True, text=True)
    return parse_importtime(p.stderr, top)


def parse_importtime(stderr: str, top: int) -> list[dict]:
    """The `top` modules of nesting depth 0-2 with the largest cumulative import time."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        head, cum_us, name = line.split("|", 2)
        rows.append(dict(module=name.strip(), depth=(len(name) - len(name.lstrip())) // 2,
                         self_s=int(head.split(":")[-1]) / 1e6, cumulative_s=int(cum_us) / 1e6))
    top_level = [r for r in rows if r["depth"] <= 2]
    return sorted(top_level, key=lambda r: -r["cumulative_s"])[:top]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="start-profile.json")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args(argv)
    out: dict = dict(python=sys.version.split()[0], walls={})
    for name, code in SNIPPETS:
        if "cuda" in code:
            import torch
            if not torch.cuda.is_available():
                continue
        s, err = wall(code)
        out["walls"][name] = s
        print(f"{s:7.2f} s  {name}" + (f"  FAILED: {err[-200:]}" if err else ""), flush=True)
    out["torchrun_to_child_s"] = torchrun_overhead()
    print(f"{out['torchrun_to_child_s']:7.2f} s  torchrun start to its child's first line", flush=True)
    out["import_profile"] = import_profile(args.top)
    for r in out["import_profile"]:
        print(f"{r['cumulative_s']:7.2f} s  {'  ' * r['depth']}{r['module']}")
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
