#!/usr/bin/env bash
# Where the GPU memory of long rows goes: Danlu's recipe at each RUNS item (plan@tokens per row@GiB
# cap), mb 1, 1 warm-up + 1 timed step, with the allocator's history recorded
# (DANLU_MEMORY_SNAPSHOT) and read back by bench/memory_peak.py. ONE device call:
#
#   bash bench/prepare.sh                    # on the CPU machine first: .site, .bench-baseline
#   # device tool, kind nvidia-h200, carry [".site", ".bench-baseline"], timeout 600:
#   RUNS=auto@131072@80,lowest@65536@80 DEADLINE=580 bash bench/long_memory.sh
#
# SNAPSHOT=0: no recording (the history slows every allocation, so time a run without it).
# Writes $OUT/long.jsonl (danlu_run's record per run: peak, the plan the recipe chose), and
# $OUT/peak-<plan>-<tokens>.txt (what was alive at the peak, grouped by where it was made).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
DEADLINE=${DEADLINE:-580}
T0=$(date +%s)
export PYTHONPATH=$PWD/.site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
[ -f /tmp/llama-8b/config.json ] || python3 .bench-baseline/make_model.py 8b /tmp/llama-8b 2>&1 | grep -v -i warn | tail -2
echo "[+$(( $(date +%s) - T0 ))s] model ready"
RUNS=${RUNS:-auto@131072@80,lowest@65536@80}
for run in ${RUNS//,/ }; do
  IFS=@ read -r plan seq cap <<< "$run"
  left=$(( DEADLINE - ($(date +%s) - T0) - 30 ))
  [ "$left" -lt 90 ] && { echo "skip $run: ${left}s left"; continue; }
  snap=/tmp/snap-$plan-$seq.json; [ "${SNAPSHOT:-1}" = 0 ] && snap=""  # recording slows every allocation: SNAPSHOT=0 to time
  echo "[+$(( $(date +%s) - T0 ))s] $run (limit ${left}s)"
  DANLU_GPU_MEMORY_CAP_GIB=$cap DANLU_MEMORY_SNAPSHOT=$snap timeout "$left" python3 bench/danlu_run.py \
    --model /tmp/llama-8b --mb 1 --seq "$seq" --warmup 1 --steps 1 --tag "$plan-$seq-cap$cap" \
    --out "$OUT/long.jsonl" --home /tmp/lm-home --timeout $(( left - 20 )) --set "memory_plan=$plan" \
    > "$OUT/log-$plan-$seq.txt" 2>&1
  tail -3 "$OUT/log-$plan-$seq.txt"
  [ -n "$snap" ] && [ -f "$snap" ] && python3 bench/memory_peak.py "$snap" --top 40 > "$OUT/peak-$plan-$seq.txt" && head -3 "$OUT/peak-$plan-$seq.txt"
  [ -n "$snap" ] && rm -f "$snap"
done
for f in "$OUT"/log-*.txt; do tail -c 20000 "$f" > "$f.tail" && mv "$f.tail" "$f"; done
echo "[+$(( $(date +%s) - T0 ))s] done"
