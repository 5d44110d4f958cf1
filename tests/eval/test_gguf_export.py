"""Export to where people run models, on the really trained demo job: GGUF types made by llama.cpp's own
converter and quantiser, an Ollama Modelfile, the LoRA adapter alone and a model card; from the CLI
and from the Export tab's handlers; and a stopped export that leaves nothing under a final name.
Needs the GGUF tools (`make gguf`, which `make test` runs first)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_app

pytestmark = pytest.mark.slow
QUESTION = "What colour does the tin furnace burn?"


@pytest.fixture(scope="module", autouse=True)
def gguf_tools_ready():
    from core import gguf_tools
    st = gguf_tools.status()
    assert st["ready"], f"run `make gguf` first: {st['missing']}"


def greedy_reference(home: Path, lora: Path, prompt_ids: list[int], n: int = 16) -> list[int]:
    """base + the exported adapter, merged in plain transformers/PEFT (float32), n greedy tokens."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(home / "models" / "danlu-tiny", dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(lora)).merge_and_unload()
    assert model.dtype == torch.float32
    cur, out = torch.tensor([prompt_ids]), []
    with torch.inference_mode():
        for _ in range(n):
            t = int(model(input_ids=cur).logits[0, -1].argmax())
            out.append(t)
            cur = torch.cat([cur, torch.tensor([[t]])], dim=1)
    return out


def gguf_greedy(path: Path, prompt_ids: list[int], n: int = 16) -> list[int]:
    import llama_cpp
    import numpy as np
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=len(prompt_ids) + n + 8, logits_all=True, verbose=False)
    llm.eval(prompt_ids)
    out = []
    for _ in range(n):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval([out[-1]])
    return out


def check_manifest(out, names: set) -> None:
    """manifest.json: every file with size, sha256 and format; every format with its check."""
    from core.export import verify_export
    manifest = json.loads((out / "manifest.json").read_text())
    assert verify_export(out) is None
    assert set(manifest["files"]) == names - {"manifest.json", "danlu_export.json"}
    assert manifest["files"]["gguf-cli-Q4_K_M.gguf"]["format"] == "q4_k_m"
    assert manifest["files"]["lora/adapter_model.safetensors"]["format"] == "lora"
    checks = manifest["formats"]
    assert all(checks[f]["status"] == "passed" for f in ("f16", "q8_0", "q4_k_m", "lora", "ollama")), checks
    for fmt in ("f16", "q8_0"):  # full precision and 8-bit repeat transformers' greedy answer (16 tokens at most)
        c = checks[fmt]
        assert c["agreeing_tokens"] == c["compared_tokens"] > 0 and c["forced_tokens"] == 16, c
        assert c["prompt_tokens_match"] is True  # llama.cpp tokenizes the prompt as transformers does
    assert checks["f16"]["forced_agreeing_tokens"] == 16  # same weights: even what follows the answer agrees
    assert checks["q4_k_m"]["reply"].strip() and "tensor_types" in checks["q4_k_m"]
    assert checks["q8_0"]["tensor_types"].get("Q8_0", 0) > 0 and checks["f16"]["tensor_types"].get("F16", 0) > 0
    # the demo's rows are 64 wide; K-quant blocks are 256: llama.cpp fell back, and the manifest says so
    assert "divisible by 256" in checks["q4_k_m"]["note"]


def check_modelfile_and_card(out, tok) -> None:
    """The Modelfile (FROM the Q4_K_M; its template renders what the tokenizer's renders) and the model card."""
    from core import ollama
    mf = ollama.read_modelfile((out / "Modelfile").read_text())
    assert mf["from"] == "./gguf-cli-Q4_K_M.gguf" and mf["stops"] == ["<|im_end|>"] and mf["system"] == "Answer briefly."
    two_turns = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "The tin furnace burns blue."},
                 {"role": "user", "content": "And the pine pill?"}]
    for conv in (two_turns, [{"role": "system", "content": "Be exact."}, *two_turns]):
        msgs = ollama.ollama_messages(conv, mf["system"])
        assert ollama.render_go(mf["template"], msgs) == tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    # the model card: Hugging Face layout, and the run's facts
    _, header, body = (out / "README.md").read_text().split("---\n", 2)
    meta = yaml.safe_load(header)
    assert meta["base_model"] == "builtin:danlu-tiny" and meta["library_name"] == "transformers" and "gguf" in meta["tags"]
    for fact in ("demo.jsonl", "124 rows", "final training loss", "final validation loss", "lora_rank: 16", "Answer briefly.",
                 "ollama create gguf-cli", "llama-cli -m"):
        assert fact in body, fact


def test_cli_writes_verified_gguf_ollama_lora_and_a_model_card(trained):
    home, job_id = trained["home"], trained["job_id"]
    r = run_app("merge", job_id, "gguf-cli", "--format", "q4_k_m,q8_0,f16,lora,ollama", "--system", "Answer briefly.",
                home=home, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = home / "exports" / "gguf-cli"
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"gguf-cli-Q4_K_M.gguf", "gguf-cli-Q8_0.gguf", "gguf-cli-F16.gguf", "Modelfile", "README.md", "manifest.json",
            "lora/adapter_config.json", "lora/adapter_model.safetensors"} <= names
    assert "model.safetensors" not in names and not any(n.startswith((".merged", ".work")) for n in names)
    assert not (home / "exports" / "gguf-cli.partial").exists()
    for fmt in ("f16", "q8_0", "q4_k_m", "lora", "ollama"):
        assert f"{fmt:<12} passed" in r.stdout, r.stdout

    check_manifest(out, names)

    # independently of the export's own check: base + the exported LoRA in PEFT vs the GGUFs in llama.cpp
    from peft import PeftConfig
    from transformers import AutoTokenizer
    assert PeftConfig.from_pretrained(out / "lora").r == 16
    tok = AutoTokenizer.from_pretrained(out / "lora")
    text = tok.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    reference = greedy_reference(home, out / "lora", ids)
    assert gguf_greedy(out / "gguf-cli-F16.gguf", ids) == reference
    end = reference.index(tok.eos_token_id) + 1 if tok.eos_token_id in reference else 16
    assert gguf_greedy(out / "gguf-cli-Q8_0.gguf", ids)[:end] == reference[:end]
    assert tok.decode(reference[:end], skip_special_tokens=True).strip()  # an answer (its words are the model's)

    check_modelfile_and_card(out, tok)


def test_the_export_tab_shows_the_plan_and_exports_the_other_types(trained):
    from core import jobs as J
    from core.services import Services
    from webui.context import Gui
    from webui.tabs import export_tab as ext
    gui = Gui(services=Services.create(trained["home"]))
    formats = ["safetensors", "bf16", "q6_k", "q5_k_m", "q3_k_m"]
    plan = ext.plan_markdown(gui, "en", trained["job_id"], formats)
    for label in ("Merged model", "GGUF BF16", "GGUF Q6_K", "GGUF Q5_K_M", "GGUF Q3_K_M", "free", "expected size"):
        assert label in plan, plan
    assert "可用" in ext.plan_markdown(gui, "zh-CN", trained["job_id"], formats)
    job_id, message, _ = ext.start_merge(gui, "en", trained["job_id"], "gguf-gui", "bf16", formats, "")
    assert "Export started" in message, message
    deadline = time.time() + 600
    while not gui.store.get(job_id).terminal:
        assert time.time() < deadline, "the export job did not finish"
        time.sleep(0.5)
    job = gui.store.get(job_id)
    assert job.state == J.SUCCEEDED, (job.reason, job.message)
    shown = ext.result_markdown(gui, job, "en")
    for fmt in formats:
        assert f"✓ `{fmt}`" in shown, shown
    out = trained["home"] / "exports" / "gguf-gui"
    checks = json.loads((out / "manifest.json").read_text())["formats"]
    assert all(c["status"] == "passed" for c in checks.values()) and set(checks) == set(formats)
    assert checks["bf16"]["forced_agreeing_tokens"] == 16 and checks["bf16"]["tensor_types"].get("BF16", 0) > 0
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert "gguf-gui" in ext.exports_frame(gui, "en").iloc[:, 0].tolist()


def test_a_stopped_export_leaves_no_final_named_file(trained, monkeypatch):
    """Started and stopped from the Export tab's handlers."""
    from core import jobs as J
    from core.services import Services
    from webui.context import Gui
    from webui.tabs import export_tab as ext
    gui = Gui(services=Services.create(trained["home"]))
    ws = gui.ws
    # hang at step 5 ("quantising to F16"): the merge, the transformers check and the conversion are done,
    # so the partial folder holds real weights and a GGUF
    monkeypatch.setenv("DANLU_FAULT", "export_hang@5")
    job_id, message, _ = ext.start_merge(gui, "en", trained["job_id"], "stopped", "bf16", ["f16", "q8_0", "ollama"], "")
    job = gui.store.get(job_id)
    progress = Path(job.run_dir) / "progress.json"
    partial = ws.exports / "stopped.partial"
    deadline = time.time() + 300
    while not (progress.is_file() and json.loads(progress.read_text()).get("step") == 5):
        assert time.time() < deadline and not J.JobStore(ws.db_path).get(job.id).terminal, "never reached step 5"
        time.sleep(0.2)
    assert list(partial.rglob("*.gguf")), "the conversion had written a GGUF inside the partial folder"
    assert "Stopping" in ext.stop_export(gui, "en", job.id)
    while not J.JobStore(ws.db_path).get(job.id).terminal:
        assert time.time() < deadline + 60, "the stopped export did not end"
        time.sleep(0.2)
    assert J.JobStore(ws.db_path).get(job.id).state == J.CANCELLED
    assert not (ws.exports / "stopped").exists() and not partial.exists()
    assert not [p for p in ws.exports.rglob("stopped*")]
