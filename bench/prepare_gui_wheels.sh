#!/usr/bin/env bash
# Run HERE before bench/load_gpu.sh: the GPU machine has no network and no Gradio. Downloads the
# exact wheels of Gradio and the packages it needs that the GPU image lacks (Python 3.12, x86-64)
# into .whl_gui/ (ignored, ~36 MB), at the versions installed in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx "/.whl_gui/" .git/info/exclude 2>/dev/null || echo "/.whl_gui/" >> .git/info/exclude
mkdir -p .whl_gui
for p in gradio gradio_client fastapi starlette pydantic pydantic_core uvicorn orjson brotli python-multipart \
         safehttpx semantic-version tomlkit groovy pydub pytz hf-gradio annotated-types typing-inspection \
         opentelemetry-api typing_extensions; do
  v=$(.venv/bin/pip show "$p" | awk '/^Version/{print $2}')
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl_gui "$p==$v"
done
du -sh .whl_gui
