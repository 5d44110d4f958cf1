#!/usr/bin/env bash
# Run HERE (the CPU machine with package access), from the repository root, before a GPU run.
# 1. copies the peer baseline harness (../shared/bench-baseline) into .bench-baseline/ (ignored),
# 2. builds the ignored folders of pre-extracted packages the GPU machine lacks (it has no network):
#    .site      bitsandbytes 0.50.2 (CUDA 13 libs), peft 0.21.2, liger-kernel 0.8.5   (~16 MB)
#    .site_uns  Unsloth 2026.10.9 and its dependencies, for the side-by-side comparison (~43 MB)
# Then call the device tool with carry [".site", ".site_uns", ".bench-baseline"] and run bench/run_gpu.sh
# or bench/run_bigger.sh (issue 20: memory plan, long context, real data, restarts; it needs nothing else).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
rm -rf .bench-baseline && cp -r "$SHARED/bench-baseline" .bench-baseline
for p in /.bench-baseline/ /.site/ /.site_uns/; do grep -qx "$p" .git/info/exclude 2>/dev/null || echo "$p" >> .git/info/exclude; done
[ -d .site ] && [ -d .site_uns ] || UNSLOTH=${UNSLOTH:-1} bash .bench-baseline/prepare_site.sh
du -sh .site .site_uns .bench-baseline 2>/dev/null
