#!/usr/bin/env bash
# Issue 20's GPU rows on ONE GPU in ONE call (bench/bigger.py says which rows, in which order).
#
#   bash bench/prepare.sh                                    # on the CPU machine first: .site, .site_uns, .bench-baseline
#   # device tool, kind nvidia-h200, carry [".site", ".site_uns", ".bench-baseline"], timeout 600:
#   DEADLINE=570 bash bench/run_bigger.sh                    # restart 1+2, memory-plan, lowest-memory, long-16k, ...
#   MODES=real-data,long-32k,baseline DEADLINE=570 bash bench/run_bigger.sh   # a second call: the rest
#   MODES=70b DEADLINE=570 bash bench/run_bigger.sh          # a third: 70B (writes its nf4 checkpoint first)
#   MODES=70b-lowest DEADLINE=570 bash bench/run_bigger.sh   # 70B with Danlu at lowest memory (details only)
#   MODES=fit-24 DEADLINE=235 bash bench/run_bigger.sh       # what fits in 24 GiB (64k tokens per row, capped)
#   MODES=fit FIT_RUNS=unsloth@49152,danlu@131072@80,unsloth@131072@80 DEADLINE=570 bash bench/run_bigger.sh   # any rows; @GiB: its own cap
#
# Writes $OUT/bigger.json (the pinned format; copy it to bench/results/bigger.json) and
# $OUT/bigger-details.json (every run's record), and $OUT/bigger/log_*.txt. Rows that an earlier
# call wrote to bench/results/bigger.json on the same kind of card are kept unless measured again.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
DEADLINE=${DEADLINE:-570}
T0=$(date +%s)
export PYTHONPATH=$ROOT/.site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false OUT
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, peft, bitsandbytes, liger_kernel; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'bnb', bitsandbytes.__version__)" 2>&1 | tail -1
for d in .site .site_uns .bench-baseline; do [ -e "$d" ] || echo "MISSING $d: run bash bench/prepare.sh on the CPU machine and carry it"; done
if [[ "${MODES:-}" != 70b* ]] && [ ! -f /tmp/llama-8b/config.json ]; then
  echo "[+$(( $(date +%s) - T0 ))s] build the random 8B checkpoint"
  python3 .bench-baseline/make_model.py 8b /tmp/llama-8b 2>&1 | grep -v -i warn | tail -2
fi
M70=""
if [[ ",${MODES:-}," == *",70b,"* || ",${MODES:-}," == *",70b-lowest,"* ]]; then
  # 70B cannot be built as bf16 on the card's disk: written as nf4, layer by layer (about 40 GB),
  # in memory-backed /dev/shm when it has the room, else on disk
  M70=/tmp/llama-70b-nf4
  [ "$(df -k --output=avail /dev/shm | tail -1)" -gt 50000000 ] && M70=/dev/shm/llama-70b-nf4
  echo "[+$(( $(date +%s) - T0 ))s] build the random 70B nf4 checkpoint in $M70"
  [ -f "$M70/config.json" ] || python3 bench/make_nf4_model.py 70b "$M70" --device cuda 2>&1 | grep -v -i warn | tail -3
fi
LEFT=$(( DEADLINE - ($(date +%s) - T0) - 10 ))
python3 bench/bigger.py --model /tmp/llama-8b --work "$OUT/bigger" --out "$OUT/bigger.json" --deadline "$LEFT" \
  --merge bench/results/bigger.json ${MODES:+--modes "$MODES"} ${M70:+--model-70b "$M70"} \
  ${FIT_CAP:+--fit-cap "$FIT_CAP"} ${FIT_RUNS:+--fit-runs "$FIT_RUNS"}
# keep what comes back small: logs' tails only, no datasets or workspaces
rm -rf "$OUT/bigger/home" "$OUT/bigger"/*.jsonl.tmp "$OUT/bigger/real-data.jsonl"
for f in "$OUT"/bigger/log_*.txt; do [ -f "$f" ] && tail -c 20000 "$f" > "$f.tail" && mv "$f.tail" "$f"; done
echo "[+$(( $(date +%s) - T0 ))s] done"
