#!/usr/bin/env bash
# Run HERE (the CPU machine with package access), from the repository root, before a GPU run.
# 1. copies the peer baseline harness (../shared/bench-baseline) into .bench-baseline/ (ignored),
# 2. builds the ignored folders of pre-extracted packages the GPU machine lacks (it has no network):
#    .site      bitsandbytes 0.50.2 (CUDA 13 libs), peft 0.21.2, liger-kernel 0.8.5   (~16 MB)
#    .site_uns  Unsloth 2026.10.9 and its dependencies, for the side-by-side comparison (~43 MB)
#    .site_trl  trl 1.16.0, datasets 5.2.0, dill, multiprocess: TRL's DPOTrainer for bench/dpo_bench.py (~8 MB);
#               its other dependencies are on the device already. Only dpo_bench's TRL worker puts it on its path.
# Then call the device tool with carry [".site", ".site_uns", ".bench-baseline"] and run bench/run_gpu.sh
# or bench/run_bigger.sh (issue 20: memory plan, long context, real data, restarts; it needs nothing else).
# DPO against TRL (issue 18): carry [".site", ".site_trl", ".bench-baseline"] and run bench/dpo_bench.py (its docstring).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
rm -rf .bench-baseline && cp -r "$SHARED/bench-baseline" .bench-baseline
for p in /.bench-baseline/ /.site/ /.site_uns/ /.site_trl/; do grep -qx "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
[ -d .site ] && [ -d .site_uns ] || UNSLOTH=${UNSLOTH:-1} bash .bench-baseline/prepare_site.sh
if [ ! -d .site_trl ]; then
  python3 -m pip install -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --no-compile \
    --target .site_trl trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  rm -rf .site_trl/bin
fi
du -sh .site .site_uns .site_trl .bench-baseline 2>/dev/null
