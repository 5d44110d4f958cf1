"""llama.cpp's own GGUF tools, installed once: the converter script and the quantiser. Danlu writes no
converter of its own. Pure Python (no torch).

    python -m core.gguf_tools            # what is installed, what is missing
    python -m core.gguf_tools install    # the one-time set-up (`make gguf` runs this; so does the first GGUF export)
    python -m core.gguf_tools unpack ARCHIVE.tar.gz   # the converter from a carried source archive (no network)

Both tools come from ONE pinned release, `llama-cpp-python` (requirements-gguf.txt), a source archive
that carries llama.cpp itself:
- pip builds it from source (CMake + the C++ compiler; CPU only, no -march=native, nothing but the
  library): that gives the `llama_cpp` Python binding, which loads a GGUF to check it answers, and
  llama.cpp's quantiser (`llama_model_quantize`, through the binding). About 3.5 minutes on 2 cores,
  once: pip keeps the built wheel in its cache, so a new virtualenv (or CI) installs it in seconds.
- the same archive's `vendor/llama.cpp/convert_hf_to_gguf.py`, its `conversion/` package and its
  `gguf-py/` are unpacked into a cache folder, `~/.cache/danlu/llama.cpp-<version>/` (or
  $DANLU_TOOLS_DIR), and run with this Python.
"""
from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from core import knobs

REPO = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO / "requirements-gguf.txt"
# CPU only, portable (AVX2-class x86 without -march=native: a wheel cached here must run on CI's and
# other machines of the same kind), and only the library: no tools, tests, examples, server or llava.
CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_BLAS=OFF -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DLLAVA_BUILD=OFF "
              "-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF")
CONVERTER_MEMBERS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/", "LICENSE")
ONE_TIME_NOTE = ("One-time set-up for GGUF: building llama.cpp from source (about 4 minutes on 2 CPU cores, "
                 "then cached). `make gguf` does this ahead of time.")


def pinned(package: str) -> str:
    """The exact version requirements-gguf.txt pins for `package`."""
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        m = re.match(rf"^\s*{re.escape(package)}==([\w.]+)", line)
        if m:
            return m.group(1)
    raise RuntimeError(f"{REQUIREMENTS} pins no {package}")


def tools_dir() -> Path:
    root = knobs.get(knobs.TOOLS_DIR) or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                              os.path.expanduser("~/.cache"), "danlu")
    return Path(root) / f"llama.cpp-{pinned('llama-cpp-python')}"


def converter_script() -> Path:
    return tools_dir() / "convert_hf_to_gguf.py"


def _installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def status() -> dict:
    """{ready, missing: [...], binding, converter}: what a GGUF export needs and whether it is here."""
    want = pinned("llama-cpp-python")
    have = _installed("llama_cpp_python")
    missing = []
    if have != want:
        missing.append(f"llama-cpp-python {want} (installed: {have or 'none'})")
    if _installed("gguf") != pinned("gguf"):
        missing.append(f"gguf {pinned('gguf')}")
    if not (converter_script().is_file() and (tools_dir() / "conversion").is_dir()):
        missing.append(f"llama.cpp's converter in {tools_dir()}")
    return dict(ready=not missing, missing=missing, binding=have, converter=str(converter_script()))


def install(say=print) -> None:
    """Install what status() says is missing. `say` gets one line at a time (pip's and ours)."""
    st = status()
    if st["ready"]:
        say(f"GGUF tools ready: llama-cpp-python {st['binding']}, converter {st['converter']}")
        return
    say(ONE_TIME_NOTE)
    if any(not m.startswith("llama.cpp's converter") for m in st["missing"]):
        env = dict(os.environ, CMAKE_ARGS=os.environ.get("CMAKE_ARGS", CMAKE_ARGS),
                   CMAKE_BUILD_PARALLEL_LEVEL=os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2)))
        _pip(["install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)], env, say)
    if not converter_script().is_file():
        unpack_converter(say)
    st = status()
    if not st["ready"]:
        raise RuntimeError("the GGUF tools are still incomplete after installing: " + "; ".join(st["missing"]))
    say(f"GGUF tools ready: llama-cpp-python {st['binding']}, converter {st['converter']}")


def _pip(args: list[str], env: dict, say) -> None:
    """pip as a child, its output passed on line by line (a build shows it is alive)."""
    proc = subprocess.Popen([sys.executable, "-m", "pip", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    tail: list[str] = []
    try:
        for line in proc.stdout:  # ends when pip does: this is a bounded install, not a long-lived child
            line = line.rstrip()
            if line and "is ignored: it is neither a file nor a directory" not in line:
                say(line)
                tail = (tail + [line])[-20:]
    finally:
        rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"pip {' '.join(args[:1])} failed (exit {rc}): " + " | ".join(tail[-5:]))


def unpack_converter(say=print, archive: Path | None = None) -> Path:
    """Fetch the pinned source archive (pip's cache serves it after the install), or take `archive` (a machine
    without network: bench/prepare_gguf.sh carries one), and keep only the converter."""
    version = pinned("llama-cpp-python")
    target = tools_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        if archive is None:
            _pip(["download", "--disable-pip-version-check", "--no-deps", "--no-binary", ":all:",
                  f"llama-cpp-python=={version}", "-d", tmp], dict(os.environ), say)
            archive = next(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        stage = Path(tmp) / "stage"
        prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                       and any(m.name[len(prefix):].startswith(k) for k in CONVERTER_MEMBERS)
                       and (m.isfile() or m.isdir())]
            for m in members:
                m.name = m.name[len(prefix):]
            tar.extractall(stage, members=members, filter="data")
        if not (stage / "convert_hf_to_gguf.py").is_file():
            raise RuntimeError(f"{archive.name} has no vendor/llama.cpp/convert_hf_to_gguf.py")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(stage, target)  # whole or not at all: a half-unpacked converter is never used
    say(f"llama.cpp's converter unpacked into {target}")
    return target


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["unpack"] and len(argv) == 2:  # python -m core.gguf_tools unpack llama_cpp_python-X.tar.gz
        unpack_converter(lambda line: print(line, flush=True), Path(argv[1]))
        return 0
    if argv[:1] == ["install"]:
        try:
            install(lambda line: print(line, flush=True))
        except RuntimeError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    st = status()
    print("GGUF tools: " + ("ready" if st["ready"] else "missing " + "; ".join(st["missing"])))
    return 0 if st["ready"] else 1


if __name__ == "__main__":
    sys.exit(main())
