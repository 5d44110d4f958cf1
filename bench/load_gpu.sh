#!/usr/bin/env bash
# The GUI load benchmark (bench/load_gui.py) on a GPU machine, where Danlu's jobs really train: an 8B
# Llama-shape QLoRA job on one GPU while 50 simulated Train tabs poll and 5 clients upload datasets.
# On the 2-core CPU machine the job and the load share the same two cores; here the job runs on the GPU.
#
#   here:    bash bench/prepare.sh; bash bench/prepare_gui_wheels.sh     # builds .site and .whl_gui (ignored)
#   device:  run(command="bash bench/load_gpu.sh", carry=[".site", ".whl_gui", ".bench-baseline"])
#
# Writes $OUT/load-gpu.json (the report) and prints it.
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STEPS=${STEPS:-60}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl_gui/*.whl
export PYTHONPATH=$PWD/.site:/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
       TOKENIZERS_PARALLELISM=false GRADIO_ANALYTICS_ENABLED=False
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
[ -f /tmp/llama-8b/config.json ] || python3 .bench-baseline/make_model.py 8b /tmp/llama-8b 2>&1 | grep -v -i warn | tail -1
python3 - "$STEPS" <<'PY'
import sys, yaml
sys.path.insert(0, "bench")
from pathlib import Path
from danlu_run import make_data
steps = int(sys.argv[1])
data = Path("/tmp/load-data.jsonl")
make_data(data, rows=steps * 2 + 8, seq=2048)
cfg = {"base_model": "/tmp/llama-8b", "dataset": str(data), "dataset_format": "text", "quantization": "4bit",
       "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear",
       "learning_rate": 2e-4, "lr_scheduler": "constant", "warmup_ratio": 0.0, "micro_batch_size": 2,
       "gradient_accumulation_steps": 1, "max_seq_length": 2048, "packing": True, "seed": 0}
Path("/tmp/load-8b.yaml").write_text(yaml.safe_dump(cfg))
PY
python3 bench/load_gui.py --config /tmp/load-8b.yaml --steps "$STEPS" --logging-steps 2 --reps "${REPS:-2}" \
    --home /tmp/danlu-load --out "$OUT/load-gpu.json"
