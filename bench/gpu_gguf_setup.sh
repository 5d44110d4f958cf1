#!/usr/bin/env bash
# On the GPU machine (no network), from the repository root, at the start of each call that runs
# bench/gpu_gguf_export.py; needs the folder bench/prepare_gguf.sh made here, carried as ".whl-gguf".
# Installs the carried wheels into /tmp/gguf-site and the converter into /tmp/danlu-tools, then exports
# PYTHONPATH / DANLU_TOOLS_DIR for the rest of the command (source it: `. bench/gpu_gguf_setup.sh`, or
# chain it with && as the docstring of bench/gpu_gguf_export.py does, which also works because the
# variables are written to .bench-gguf/env and read back by the bench).
set -euo pipefail
cd "$(dirname "$0")/.."
SITE=/tmp/gguf-site
mkdir -p .bench-gguf
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
  .whl-gguf/gguf-*.whl .whl-gguf/diskcache-*.whl .whl-gguf/llama_cpp_python-*.whl
if ! PYTHONPATH="$SITE" python3 -c "import llama_cpp; llama_cpp.llama_backend_init()" 2>/tmp/gguf-import.err; then
  echo "the carried llama-cpp-python wheel does not load here ($(tail -1 /tmp/gguf-import.err)); building it from source"
  CMAKE_ARGS=$(python3 -c "import sys; sys.path.insert(0, '.'); from core.gguf_tools import CMAKE_ARGS; print(CMAKE_ARGS)") \
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
    --upgrade --target "$SITE" .whl-gguf/llama_cpp_python-*-src.tar.gz
fi
DANLU_TOOLS_DIR=/tmp/danlu-tools PYTHONPATH="$SITE" python3 -m core.gguf_tools unpack .whl-gguf/llama_cpp_python-*-src.tar.gz
printf 'PYTHONPATH=%s\nDANLU_TOOLS_DIR=/tmp/danlu-tools\n' "$SITE" > .bench-gguf/env
PYTHONPATH="$SITE" DANLU_TOOLS_DIR=/tmp/danlu-tools python3 -m core.gguf_tools
