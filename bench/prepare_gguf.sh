#!/usr/bin/env bash
# Run HERE (the CPU machine with package access), from the repository root, before the GPU GGUF run
# (bench/gpu_gguf_export.py). Builds the ignored folder .whl-gguf/ (about 32 MB) with:
#   llama_cpp_python-0.3.36-py3-none-linux_x86_64.whl  built here by `make gguf` (pip's wheel cache). It is a
#       ctypes binding (tag py3-none: no CPython ABI), so it also loads under the GPU machine's Python 3.12,
#       provided that machine's glibc/libstdc++ are at least as new as this one's (Debian 12) and its CPU has
#       AVX2 (the build is GGML_NATIVE=OFF);
#   llama_cpp_python-0.3.36-src.tar.gz  the same release's source archive without its git history, test
#       vocabularies, docs and web UI (76 MB -> about 12 MB; a call may carry 64 MiB): llama.cpp's converter is unpacked from it there, and
#       if the wheel does not load, the binding is built from it there with the machine's CMake;
#   gguf 0.19.0 and diskcache 5.6.3 (pure Python; llama-cpp-python needs diskcache, the checks read GGUFs with gguf).
# Then call the device tool with carry [".whl-gguf"] (see bench/gpu_gguf_export.py for the commands).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
VER=$(sed -n 's/^llama-cpp-python==//p' requirements-gguf.txt)
rm -rf .whl-gguf && mkdir -p .whl-gguf
export CMAKE_ARGS=$($PY -c "from core.gguf_tools import CMAKE_ARGS; print(CMAKE_ARGS)")
$PY -m pip wheel -q --disable-pip-version-check --no-deps "llama-cpp-python==$VER" -w .whl-gguf
$PY -m pip download -q --disable-pip-version-check --no-deps "gguf==0.19.0" "diskcache==5.6.3" -d .whl-gguf
tmp=$(mktemp -d)
$PY -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: "llama-cpp-python==$VER" -d "$tmp"
tar -xzf "$tmp/llama_cpp_python-$VER.tar.gz" -C "$tmp"
src="llama_cpp_python-$VER"
# what neither the converter nor a CPU-only library build reads: the sdist's own git history (38 MB), test
# vocabularies, docs, benchmark logs, the server's web UI
rm -rf "$tmp/$src/.git" "$tmp/$src/vendor/llama.cpp/.git" "$tmp/$src/vendor/llama.cpp/models" "$tmp/$src/vendor/llama.cpp/docs" \
  "$tmp/$src/vendor/llama.cpp/media" "$tmp/$src/vendor/llama.cpp/benches" "$tmp/$src/vendor/llama.cpp/tools/ui" \
  "$tmp/$src/vendor/llama.cpp/tools/server"
tar -czf ".whl-gguf/$src-src.tar.gz" -C "$tmp" "$src"
rm -rf "$tmp"
du -sh .whl-gguf .whl-gguf/*
