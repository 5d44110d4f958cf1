#!/usr/bin/env bash
# Training-speed benchmark on a GPU machine: the peer baseline (HF Trainer + PEFT + bnb, the
# harness from ../shared/bench-baseline), Unsloth (when its packages are carried) and Danlu's
# recipe as the GUI launches it, back to back on the same card, 8B Llama-3.1 shape, seq 2048.
#
#   bash bench/prepare.sh                      # on the CPU machine first (copies harness, builds .site*)
#   bash bench/run_gpu.sh single               # 1 GPU: baseline, unsloth, danlu at micro-batch 1, 4, 8
#   bash bench/run_gpu.sh multi                # all GPUs: danlu (and baseline) on 1, 2, 4 GPUs at mb 4
#   bash bench/run_gpu.sh final4               # 2 or 4 GPUs in one call: the comparison, scaling 1/2/4, loss curve, chat
#   bash bench/run_gpu.sh offload              # activation offload: GPU correctness test, speed/memory vs default
#   bash bench/run_gpu.sh smoke                # danlu only, mb 1 and 4: a quick check of the CUDA path
#
# Results: $OUT/results.jsonl (baseline/unsloth rows from the harness), $OUT/danlu.jsonl, and
# bench/results/latest.json + a table (bench/collect.py). Stops starting jobs near DEADLINE seconds.
set -u
MODE=${1:-single}
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$ROOT/.site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 OUT
DEADLINE=${DEADLINE:-560}
T0=$(date +%s)
el() { echo "[+$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
B=$ROOT/.bench-baseline
NGPU=$(nvidia-smi -L | wc -l)

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, peft, bitsandbytes, liger_kernel; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'bnb', bitsandbytes.__version__)" 2>&1 | tail -1
[ -f /tmp/llama-8b/config.json ] || { el "build 8b"; python3 "$B/make_model.py" 8b /tmp/llama-8b 2>&1 | grep -v -i warn | tail -2; }

base() {  # base NAME TIMEOUT ARGS...: the peer harness, one process, micro-batches ascending
  local name=$1 to=$2; shift 2
  [ "$(left)" -lt 60 ] && { el "SKIP $name (no time left)"; return; }
  [ "$to" -gt "$(left)" ] && to=$(left)
  el "baseline $name (timeout ${to}s)"
  timeout -k 5 "$to" python3 "$B/qlora_bench.py" --tag "$name" --model /tmp/llama-8b --size 8b "$@" > "$OUT/log_$name.txt" 2>&1
  grep -h RESULT "$OUT/log_$name.txt" | cut -c1-20 >/dev/null || true
  grep -q Traceback "$OUT/log_$name.txt" && grep -v -i warn "$OUT/log_$name.txt" | tail -8
}
danlu() {  # danlu MB NPROC TIMEOUT [--set k=v ...]
  local mb=$1 np=$2 to=$3; shift 3
  [ "$(left)" -lt 45 ] && { el "SKIP danlu mb$mb x$np (no time left)"; return; }
  [ "$to" -gt "$(left)" ] && to=$(left)
  el "danlu mb$mb x$np $*"
  python3 bench/danlu_run.py --model /tmp/llama-8b --mb "$mb" --nproc "$np" --out "$OUT/danlu.jsonl" --timeout "$to" "$@" 2>&1 | tail -4
}

case "$MODE" in
  smoke)
    danlu 1 1 150 --tag danlu
    danlu 4 1 120 --tag danlu
    danlu 1 1 120 --tag danlu-nockpt --set gradient_checkpointing=false
    ;;
  explore)
    danlu 4 1 100 --tag danlu
    danlu 1 1 110 --tag danlu
    danlu 8 1 110 --tag danlu
    DANLU_CKPT_POLICY=prefer danlu 1 1 110 --tag danlu-prefer
    ;;
  final4)
    # One call on a 4-GPU machine. GPU 0: the side-by-side comparison (baseline, Unsloth, Danlu at
    # micro-batch 1, 4, 8). Meanwhile GPU 1: Danlu's 1-GPU reference at mb 4 for scaling, the offload
    # GPU test, the 50-step loss-curve check; GPUs 2+3: Danlu on 2 GPUs, then the chat benchmark on
    # GPU 2 (these two only with 4 GPUs). Last, Danlu on all GPUs of the machine.
    STEPS="--warmup 3 --steps ${STEPS:-10}"
    (
      CUDA_VISIBLE_DEVICES=0 base baseline 150 --bs 1,4,8 ${STEPS}
      [ -d "$ROOT/.site_uns" ] && CUDA_VISIBLE_DEVICES=0 PYTHONPATH=$ROOT/.site:$ROOT/.site_uns base unsloth 190 --bs 1,4,8 --impl unsloth ${STEPS}
      danlu 1 1 100 --gpus 0 --tag danlu $STEPS
      danlu 4 1 100 --gpus 0 --tag danlu $STEPS
      danlu 8 1 110 --gpus 0 --tag danlu $STEPS
    ) > "$OUT/laneA.txt" 2>&1 &
    A=$!
    ( danlu 4 1 110 --gpus 1 --tag danlu-ref1 $STEPS
      el "offload test (GPU 1)"
      CUDA_VISIBLE_DEVICES=1 timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu tests/recipes/test_offload_gpu.py 2>&1 | tail -3
      el "loss curve (GPU 1)"
      timeout $(( $(left) - 90 )) python3 bench/loss_curve.py --model /tmp/llama-8b --steps 50 --mb 2 --seq 1024 --lr 1e-3 \
        --gpu 1 --timeout 200 --stacks baseline,danlu,danlu-plain --out "$OUT/loss_curve.json" --work /tmp/lc > "$OUT/loss_curve.txt" 2>&1
      grep -v "^  \[" "$OUT/loss_curve.txt" | tail -70 ) > "$OUT/laneB.txt" 2>&1 &
    [ "$NGPU" -ge 4 ] && ( danlu 4 2 140 --gpus 2,3 --tag danlu-ref1 $STEPS
      el "chat benchmark (GPU 2)"
      CUDA_VISIBLE_DEVICES=2 timeout $(( $(left) - 100 )) python3 bench/gpu_merge_chat.py --phase chat --repeats 2 \
        --workdir /tmp/mc8b --out "$OUT/chat.json" 2>&1 | grep -v -i "warn\|Writing\|Loading" | tail -14 ) > "$OUT/laneC.txt" 2>&1 &
    wait $A
    wait
    danlu 4 "$NGPU" 150 --gpus "$(seq -s, 0 $(( NGPU - 1 )))" --tag danlu-ref1 $STEPS
    ;;
  offload)
    # activation offload on a side stream: correctness test, then speed and memory against the default
    STEPS="--warmup 3 --steps ${STEPS:-10}"
    el "offload test"; python3 -m pytest -q -p no:cacheprovider -m gpu tests/recipes/test_offload_gpu.py 2>&1 | tail -4
    danlu 4 1 100 --tag danlu-offload --set offload_activations=true $STEPS
    danlu 4 1 100 --tag danlu $STEPS
    danlu 1 1 100 --tag danlu-offload --set offload_activations=true $STEPS
    danlu 8 1 110 --tag danlu-offload --set offload_activations=true $STEPS
    ;;
  scale4)
    STEPS="--warmup 3 --steps ${STEPS:-10}"
    danlu 4 4 150 --gpus 0,1,2,3 --tag danlu-ref1 $STEPS
    danlu 4 1 100 --gpus 0 --tag danlu-ref1 $STEPS
    ;;
  single)
    base baseline 170 --bs 1,4,8
    danlu 1 1 110 --tag danlu
    danlu 4 1 100 --tag danlu
    danlu 8 1 110 --tag danlu
    if [ -d "$ROOT/.site_uns" ]; then
      PYTHONPATH=$ROOT/.site:$ROOT/.site_uns base unsloth 200 --bs 1,4,8 --impl unsloth
    fi
    ;;
  multi)
    for n in 1 2 4; do [ "$n" -le "$NGPU" ] && danlu 4 "$n" 130 --tag danlu; done
    [ "$NGPU" -ge 2 ] && { el "baseline ddp x2"; timeout 150 torchrun --standalone --nproc_per_node 2 "$B/qlora_bench.py" --tag baseline-ddp2 --model /tmp/llama-8b --size 8b --bs 4 > "$OUT/log_baseline-ddp2.txt" 2>&1; }
    ;;
esac
el "done"
python3 bench/collect.py --out-dir "$OUT" --json "$OUT/latest.json" || true
