"""No pickle, no model code unless ticked, hostile chat templates contained (reliability.md a.1:
CVE-2025-53002 / CVE-2025-46567 pickle loads; textgen's hard-coded trust_remote_code; a.2 sandbox).

Each test plants a payload that would leave a marker file if it ran, and shows it does not - and,
where Danlu does allow the behaviour (trust_remote_code ticked), that the marker does appear, so
the check is not blind.
"""
from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import pytest

from core.config import TrainConfig
from core.errors import InputError
from core.workspace import sha256_file

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Unpickling this runs `open(marker, 'w')`: the shape of a malicious .bin/.pt/.pkl."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def _dist():
    from core.engine.common import Dist
    import torch
    return Dist(0, 1, 0, torch.device("cpu"), None)


def test_the_pickle_payload_is_live(tmp_path, marker):
    """Guard for the tests below: this file really runs code when unpickled."""
    write_pickle(tmp_path / "p.bin", marker)
    pickle.loads((tmp_path / "p.bin").read_bytes())
    assert marker.exists()


# ---- base model folders -----------------------------------------------------------------------
def test_pickle_only_model_folder_is_refused(tmp_path, marker, demo_model_dir):
    from core.models import check_local_model, resolve_model
    m = tmp_path / "model"
    m.mkdir()
    shutil.copy(demo_model_dir / "config.json", m)
    write_pickle(m / "pytorch_model.bin", marker)
    with pytest.raises(InputError) as e:
        resolve_model(str(m))
    assert "safetensors" in str(e.value) and "pickle" in str(e.value)
    with pytest.raises(InputError):
        check_local_model(m)
    assert not marker.exists()


def test_pickle_next_to_safetensors_is_never_read(tmp_path, marker, demo_model_dir):
    from core.engine.common import load_base_model
    m = tmp_path / "model"
    shutil.copytree(demo_model_dir, m)
    write_pickle(m / "pytorch_model.bin", marker)
    write_pickle(m / "training_args.bin", marker)
    model = load_base_model(str(m), TrainConfig(quantization="none"), _dist(), local=True)
    assert model is not None and not marker.exists()


# ---- trust_remote_code ------------------------------------------------------------------------
def remote_code_model(src: Path, dest: Path, marker: Path) -> Path:
    """A model folder whose config asks for its own Python code; importing that code leaves `marker`."""
    shutil.copytree(src, dest)
    cfg = json.loads((dest / "config.json").read_text())
    cfg["model_type"] = "danlu-evil"  # unknown to transformers: only the shipped code could load it
    cfg["auto_map"] = {"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilModel"}
    (dest / "config.json").write_text(json.dumps(cfg))
    (dest / "configuration_evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('config code ran')\n"
        "from transformers import LlamaConfig\n"
        "class EvilConfig(LlamaConfig):\n    model_type = 'danlu-evil'\n")
    (dest / "modeling_evil.py").write_text(
        "from transformers import LlamaForCausalLM\nfrom .configuration_evil import EvilConfig\n"
        "class EvilModel(LlamaForCausalLM):\n    config_class = EvilConfig\n")
    return dest


def test_model_code_does_not_run_by_default(tmp_path, marker, demo_model_dir):
    from core.engine.common import classify, load_base_model
    m = remote_code_model(demo_model_dir, tmp_path / "evil", marker)
    assert TrainConfig().trust_remote_code is False
    with pytest.raises(Exception) as e:
        load_base_model(str(m), TrainConfig(quantization="none"), _dist(), local=True)
    assert not marker.exists()
    info = classify(e.value)
    assert info["reason"] == "remote_code" and "trust_remote_code" in info["hint"]


def test_model_code_runs_only_when_ticked_and_warns(tmp_path, marker, demo_model_dir, capfd):
    from core.engine.common import load_base_model, load_tokenizer
    m = remote_code_model(demo_model_dir, tmp_path / "evil", marker)
    cfg = TrainConfig(quantization="none", trust_remote_code=True, base_model=str(m))
    load_tokenizer(str(m), cfg, local=True)
    load_base_model(str(m), cfg, _dist(), local=True)
    assert marker.exists()  # the payload is real: the default-off test above would see it
    assert "WARNING: trust_remote_code is on" in capfd.readouterr().err


def test_trust_remote_code_warning_is_recorded_with_the_run(home, monkeypatch):
    """Turning it on is allowed, and leaves a warning in the config header and the run's log."""
    import subprocess
    from core import launcher
    from core.workspace import Workspace
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: type("P", (), {"pid": 1, "wait": lambda self: 0})())
    data = REPO / "presets" / "templates" / "data" / "demo.jsonl"
    ws = Workspace.open(home)
    job = launcher.submit_train(ws, TrainConfig(dataset=str(data), trust_remote_code=True), origin="shell")
    run = Path(job.run_dir)
    assert "WARNING: trust_remote_code is on" in (run / "config.yaml").read_text()
    assert "WARNING: trust_remote_code is on" in (run / "stdout.log").read_text()
    job = launcher.submit_train(ws, TrainConfig(dataset=str(data)), origin="shell")
    assert "WARNING" not in (Path(job.run_dir) / "config.yaml").read_text()


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            yield node


def _name(func) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def source_files(dirs=("core", "cli", "webui", "bench")):
    for d in dirs:
        if (REPO / d).exists():
            yield from (REPO / d).rglob("*.py")


PRODUCT = ("core", "cli", "webui")  # what loads users' models (bench/ loads models it generated itself)


def test_every_loader_passes_trust_remote_code_and_safetensors():
    """Static: each from_pretrained names trust_remote_code (never a literal True); model loads
    pass use_safetensors=True, so a .bin next to the weights is never unpickled."""
    seen = 0
    for path in source_files(PRODUCT):
        for call in _calls(path):
            name = _name(call.func)
            if not name.endswith("from_pretrained"):
                continue
            kw = {k.arg: k.value for k in call.keywords if k.arg}
            where = f"{path.relative_to(REPO)}:{call.lineno} {name}"
            if name.startswith("Peft"):
                continue  # adapters: loaded only from folders checked to hold adapter_model.safetensors
            seen += 1
            if any(k.arg is None for k in call.keywords):  # **kw: check the dict literal it came from
                continue
            assert "trust_remote_code" in kw, f"{where} does not pass trust_remote_code"
            assert not (isinstance(kw["trust_remote_code"], ast.Constant) and kw["trust_remote_code"].value is True), where
            if "Model" in name:
                assert isinstance(kw.get("use_safetensors"), ast.Constant) and kw["use_safetensors"].value is True, \
                    f"{where} does not pass use_safetensors=True"
    assert seen, "no loader found: the scan is broken"


def test_kwargs_dicts_for_model_loads_pin_safetensors_and_trust():
    """Loads that pass **kw build it from a dict(...) that names both settings."""
    for path in source_files(PRODUCT):
        text = path.read_text()
        if "from_pretrained(source, **kw)" in text or "from_pretrained(model_dir, **kw)" in text:
            assert "use_safetensors=True" in text and "trust_remote_code=" in text, path


FORBIDDEN_CALLS = {"torch.load", "pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load", "dill.loads",
                   "joblib.load", "cloudpickle.load", "cloudpickle.loads", "eval", "exec", "os.system", "os.popen",
                   "yaml.load", "yaml.unsafe_load", "marshal.loads", "shelve.open"}


def test_no_unpickling_eval_or_shell_anywhere():
    """Static: Danlu never unpickles, evals or shells out (bandit B301/B307/B602/B605 in one test)."""
    bad = []
    for path in source_files():
        for call in _calls(path):
            name = _name(call.func)
            if name in FORBIDDEN_CALLS:
                bad.append(f"{path.relative_to(REPO)}:{call.lineno} {name}")
            for k in call.keywords:
                if k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False):
                    bad.append(f"{path.relative_to(REPO)}:{call.lineno} shell=")
                if k.arg in ("weights_only", "allow_pickle") and isinstance(k.value, ast.Constant) \
                        and k.value.value is (k.arg == "allow_pickle"):
                    bad.append(f"{path.relative_to(REPO)}:{call.lineno} {k.arg}={k.value.value}")
    assert not bad, bad


# ---- checkpoints and adapters -------------------------------------------------------------------
def test_pickle_in_a_checkpoint_is_never_loaded(tmp_path, marker):
    """Resume reads safetensors + JSON only: a forged checkpoint holding pickles fails, and runs nothing."""
    from core.engine import checkpoint as ckpt
    root = tmp_path / "checkpoints"
    forged = root / "step-0000099"
    forged.mkdir(parents=True)
    for name in ("adapter_model.bin", "optimizer.pt", "trainer_state.pkl", "rng_state.pth"):
        write_pickle(forged / name, marker)
    files = {p.name: {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in forged.iterdir()}
    (forged / "manifest.json").write_text(json.dumps({"step": 99, "files": files}))
    (forged / "trainer_state.json").write_text("{}")
    (forged / "optimizer.json").write_text('{"param_groups": [], "scalars": {}}')
    path = ckpt.newest_valid(root, log=lambda m: None)
    assert path == forged  # the manifest checks out...
    with pytest.raises(FileNotFoundError):
        ckpt.load(path)    # ...but only adapter_model.safetensors / optimizer.safetensors are ever opened
    assert not marker.exists()


# ---- chat templates -----------------------------------------------------------------------------
HOSTILE_TEMPLATES = {
    "mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "globals": "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "lipsum": "{{ lipsum.__globals__['os'].popen('touch MARKER').read() }}",
    "joiner": "{{ joiner.__init__.__globals__.__builtins__.open('MARKER', 'w') }}",
    "format": "{{ '{0.__class__.__init__.__globals__}'.format('') }}",
    "attr": "{{ ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() }}",
    "include": "{% include 'SECRET' %}",
    "import": "{% import 'SECRET' as s %}{{ s }}",
    "self": "{{ self.__init__.__globals__ }}",
    "namespace": "{% set ns = namespace() %}{{ ns.__init__.__globals__ }}",
}


@pytest.fixture
def secret(tmp_path) -> Path:
    p = tmp_path / "secret.txt"
    p.write_text("TOP-SECRET-TOKEN")
    return p


def hostile_tokenizer(demo_model_dir, template: str, marker: Path, secret: Path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(demo_model_dir), local_files_only=True)
    tok.chat_template = template.replace("MARKER", str(marker)).replace("SECRET", str(secret))
    return tok


@pytest.mark.parametrize("name", sorted(HOSTILE_TEMPLATES))
def test_hostile_chat_template_cannot_run_code_or_read_files(name, demo_model_dir, marker, secret):
    """Danlu's training path checks the template first; the sandbox refuses, and the failure is a
    named reason with a hint (chat_template), not a crash."""
    from core.engine.common import check_chat_template, classify
    from core.engine.sft_data import encode_all
    tok = hostile_tokenizer(demo_model_dir, HOSTILE_TEMPLATES[name], marker, secret)
    with pytest.raises(Exception) as e:
        check_chat_template(tok, "the model")
    info = classify(e.value)
    assert info["reason"] == "chat_template" and "chatml" in info["hint"]
    example = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    try:  # the data path on its own: either refused, or renders without the secret
        enc, _ = encode_all(tok, [example], 256, False)
        text = tok.decode(enc[0].input_ids) if enc else ""
        assert "TOP-SECRET" not in text
    except Exception as exc:
        assert "TOP-SECRET" not in str(exc)
        assert classify(exc)["reason"] in ("chat_template", "crashed")
    assert not marker.exists()


def test_chat_template_failure_in_a_row_has_a_reason():
    """A template that refuses some rows (raise_exception, as Gemma's does for system messages)."""
    from jinja2.exceptions import TemplateError
    from core.engine.common import classify
    info = classify(TemplateError("System role not supported"))
    assert info["reason"] == "chat_template" and "System role not supported" in info["message"]


def test_load_tokenizer_refuses_a_hostile_template_before_any_data(tmp_path, demo_model_dir, marker, secret):
    from core.engine.common import ChatTemplateError, load_tokenizer
    m = tmp_path / "model"
    shutil.copytree(demo_model_dir, m)
    (m / "chat_template.jinja").write_text(HOSTILE_TEMPLATES["globals"].replace("MARKER", str(marker)))
    with pytest.raises(ChatTemplateError) as e:
        load_tokenizer(str(m), TrainConfig(), local=True)
    assert "chat template" in str(e.value) and "chatml" in e.value.hint
    assert not marker.exists()
    tok = load_tokenizer(str(m), TrainConfig(chat_template="chatml"), local=True)  # the named way out works
    assert "<|im_start|>" in tok.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)


def pickle_adapter(dest: Path, marker: Path) -> Path:
    """An adapter folder with a valid config and only pickle weights (the CVE-2025-53002 shape)."""
    dest.mkdir(parents=True)
    (dest / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16,
                                                          "target_modules": ["q_proj"], "base_model_name_or_path": "x"}))
    (dest / "danlu.json").write_text(json.dumps({"base_model": "builtin:danlu-tiny"}))
    write_pickle(dest / "adapter_model.bin", marker)
    return dest


def test_pickle_adapter_is_refused_for_chat(home, marker):
    from core.chat import resolve_target
    from core.workspace import Workspace
    ws = Workspace.open(home)
    adapter = pickle_adapter(ws.runs / "forged" / "adapter", marker)
    with pytest.raises(InputError) as e:
        resolve_target(ws, "builtin:danlu-tiny", adapter=str(adapter), origin="shell")
    assert "safetensors" in str(e.value)
    assert not marker.exists()


def test_pickle_adapter_run_is_refused_for_export_and_eval(home, marker):
    """A run folder whose adapter/ holds only pickles: merge and evaluation refuse it before any load."""
    from core.export import submit_merge
    from core.runs import resolve_trained_run
    from core.workspace import Workspace
    ws = Workspace.open(home)
    run = ws.runs / "forged"
    pickle_adapter(run / "adapter", marker)
    (run / "config.yaml").write_text("dataset: x.jsonl\n")
    with pytest.raises(InputError):
        resolve_trained_run(ws, str(run))
    with pytest.raises(InputError):
        submit_merge(ws, str(run), "forged-export", origin="shell")
    assert not marker.exists() and not list(ws.exports.iterdir())


def test_cli_chat_with_a_pickle_adapter_exits_2(home, marker):
    from tests.conftest import run_app
    from core.workspace import Workspace
    ws = Workspace.open(home)
    adapter = pickle_adapter(ws.runs / "forged" / "adapter", marker)
    r = run_app("chat", "builtin:danlu-tiny", "--adapter", adapter, "--prompt", "hi", home=home, timeout=300)
    assert r.returncode == 2 and "safetensors" in r.stderr, r.stderr
    assert not marker.exists()
