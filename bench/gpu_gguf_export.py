"""GPU benchmark for GGUF export: an 8B-shaped QLoRA run exported to F16 and Q4_K_M exactly as the Export
tab's job does it (`python -m core.recipes.merge --formats f16,q4_k_m`): merge on the GPU, llama.cpp's
converter, llama.cpp's quantiser, each file loaded with llama.cpp and asked a question. Records the
time of each step, the peak GPU memory (the recipe's own and nvidia-smi's), the peak host memory of the
recipe and of each llama.cpp child, and the Q4_K_M size against the F16 size.

Here first (packages for the offline GPU machine; about 45 MB): `bash bench/prepare_gguf.sh`
Then two device calls, kind nvidia-h200, carry [".whl-gguf"] (the machine stays warm between them and
keeps the ignored work folder .bench-gguf/ in the repository):

    bash bench/gpu_gguf_setup.sh && python3 bench/gpu_gguf_export.py --phase build --out $OUT/gguf_build.json
    bash bench/gpu_gguf_setup.sh && python3 bench/gpu_gguf_export.py --phase export --out $OUT/gguf_export.json

(build: the random-initialised Llama-3.1-8B shape in bf16 and a random rank-16 LoRA, about 1-2 min;
export: about 5-8 min). `--tiny` runs the whole thing on a CPU in about a minute (a test of the script).
Disk at the peak: base 16 GB + merged fp16 16 GB + F16 GGUF 16 GB + Q4_K_M about 5 GB (the merge is
done in fp16, so the F16 GGUF is the converter's own output and no second full-precision copy is made).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_ENV = REPO / ".bench-gguf" / "env"  # written by bench/gpu_gguf_setup.sh: where it put the wheels and the converter
if _ENV.is_file():
    for _line in _ENV.read_text().splitlines():
        _k, _, _v = _line.partition("=")
        if _k == "PYTHONPATH":
            sys.path.insert(0, _v)
            os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_v, os.environ.get("PYTHONPATH", "")) if p)
        elif _k:
            os.environ.setdefault(_k, _v)

import gpu_merge_chat as gmc  # noqa: E402  (the 8B base, the random adapter, the nvidia-smi sampler)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--phase", choices=("all", "build", "export"), default="all")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--workdir", help="default: REPO/.bench-gguf/<shape> (ignored by git, kept between calls)")
    ap.add_argument("--formats", default="f16,q4_k_m")
    ap.add_argument("--keep-export", action="store_true")
    return ap.parse_args(argv)


def run_export(adapter: Path, export: Path, workdir: Path, formats: str) -> dict:
    shutil.rmtree(export, ignore_errors=True)
    shutil.rmtree(export.parent / f"{export.name}.partial", ignore_errors=True)
    result_path = workdir / "export_result.json"
    result_path.unlink(missing_ok=True)
    log_path = workdir / "export.log"
    from core.workspace import python_path
    env = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1")
    smi = gmc.SmiPeak()
    t0 = time.time()
    with open(log_path, "wb") as log:
        rc = subprocess.run([sys.executable, "-m", "core.recipes.merge", "--adapter", str(adapter), "--out", str(export),
                             "--dtype", "fp16", "--formats", formats, "--result", str(result_path)],
                            cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    res = json.loads(result_path.read_text()) if result_path.exists() else {}
    steps = [line for line in log_path.read_text(errors="replace").splitlines() if line.startswith("[danlu]")]
    out = dict(returncode=rc, wall_s=round(wall, 2), nvidia_smi_peak_mib=smi.stop(), recipe=res, danlu_log=steps[-40:],
               log_tail=log_path.read_text(errors="replace")[-3000:] if rc else "")
    fmts = res.get("formats", {})
    if "f16" in fmts and "q4_k_m" in fmts:
        f16, q4 = fmts["f16"].get("size"), fmts["q4_k_m"].get("size")
        if f16 and q4:
            out["q4_k_m_vs_f16"] = dict(f16_bytes=f16, q4_k_m_bytes=q4, ratio=round(q4 / f16, 4),
                                        q4_k_m_bits_per_weight=round(q4 * 8 / (f16 / 2), 3))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    shape = "tiny" if args.tiny else "8b"
    workdir = Path(args.workdir or REPO / ".bench-gguf" / shape)
    workdir.mkdir(parents=True, exist_ok=True)
    from core import gguf_tools
    from core.rundir import RunDir
    base, adapter, export = workdir / "base", RunDir(workdir).adapter, workdir / "export"
    report = dict(shape=shape, workdir=str(workdir), started=time.time(), tools=gguf_tools.status())
    try:
        import torch
        report.update(torch=torch.__version__, device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                      cpu_cores=os.cpu_count())
    except Exception as e:  # the report says what was missing
        report["torch_error"] = repr(e)
    if args.phase in ("all", "build"):
        report["build_base"] = gmc.build_base(base, shape)
        report["build_adapter"] = gmc.build_adapter(base, adapter)
    if args.phase in ("all", "export"):
        if not report["tools"]["ready"]:
            report["error"] = "GGUF tools missing: " + "; ".join(report["tools"]["missing"])
        else:
            report["export"] = run_export(adapter, export, workdir, args.formats)
            if not args.keep_export:
                shutil.rmtree(export, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "export"}, indent=2, default=str))
    if "export" in report:
        e = report["export"]
        r = e.get("recipe", {})
        print(f"export rc {e['returncode']}, wall {e['wall_s']} s, timings {r.get('timings_s')}, peak GPU "
              f"{r.get('peak_gpu_mem_gib')} GiB (nvidia-smi {e.get('nvidia_smi_peak_mib')} MiB), peak host RSS "
              f"{r.get('peak_host_rss_gib')} GiB, children {r.get('peak_child_rss_gib')}, sizes {e.get('q4_k_m_vs_f16')}")
        for f, c in r.get("formats", {}).items():
            print(f"  {f}: {c.get('status')}: {c.get('summary') or c.get('error')}")
        return 0 if e["returncode"] == 0 else 1
    return 1 if report.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
