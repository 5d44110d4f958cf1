"""llama.cpp's GGUF tools: what `make gguf` installed, and the converter unpacked from the pinned source archive."""
import subprocess
import sys

from core import gguf_tools
from tests.conftest import REPO


def test_make_gguf_installed_the_pinned_binding_and_converter():
    st = gguf_tools.status()
    assert st["ready"], st["missing"]
    assert st["binding"] == gguf_tools.pinned("llama-cpp-python") == "0.3.36"
    import llama_cpp
    assert callable(llama_cpp.llama_model_quantize)  # the quantiser, through the binding: one C++ build


def test_a_missing_converter_is_unpacked_from_the_source_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("DANLU_TOOLS_DIR", str(tmp_path / "tools"))
    st = gguf_tools.status()
    assert not st["ready"] and st["missing"] == [f"llama.cpp's converter in {gguf_tools.tools_dir()}"]
    r = subprocess.run([sys.executable, "-m", "core.gguf_tools", "install"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "One-time set-up" in r.stdout and "GGUF tools ready" in r.stdout
    assert gguf_tools.status()["ready"]
    here = gguf_tools.tools_dir()
    assert (here / "conversion" / "llama.py").is_file() and (here / "gguf-py" / "gguf" / "gguf_reader.py").is_file()
    assert not (here / "models").exists()  # only the converter is kept, not the 200 MB source tree


def test_an_export_plans_the_one_time_build_only_when_the_tools_are_missing():
    from core.recipes.merge import plan
    assert plan(["q4_k_m"], tools_ready=False)[0] == "installing llama.cpp (once)"
    assert plan(["q4_k_m"], tools_ready=True)[0] == "loading and merging"
    assert plan(["safetensors"], tools_ready=False)[0] == "loading and merging"
    assert plan(["q8_0", "q4_k_m", "ollama"], tools_ready=True) == [
        "loading and merging", "saving", "checking with transformers", "converting to GGUF", "quantising to Q8_0",
        "quantising to Q4_K_M", "checking the GGUF files", "writing the Modelfile", "model card and checksums"]
