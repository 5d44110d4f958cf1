"""core.paths: the one door for user-typed paths and names (reliability.md a.1 textgen / LLaMA-Factory
rows, a.2 allow/block-list bypass and UNC rows)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.errors import InputError
from core import trust
from core.paths import allowed_roots, builtin_roots, clean_label, resolve_user_path, safe_join, safe_name
from core.workspace import Workspace


def refused(fn, *args, **kw) -> str:
    with pytest.raises(InputError) as e:
        fn(*args, **kw)
    return str(e.value)


# ---- names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    ("../../x.jsonl", "x.jsonl"),
    ("/etc/passwd", "passwd"),
    ("..\\..\\x.csv", "x.csv"),
    ("C:\\x", "x"),
    ("con.csv", "_con.csv"),
    ("NUL", "_NUL"),
    ("lpt1.txt", "_lpt1.txt"),
    ("a\x00b.csv", "ab.csv"),
    ("\u202elsnoj.csv", "lsnoj.csv"),       # RTL override: would display as "csv.jsonl"
    (".bashrc", "bashrc"),
    ("...", "unnamed"),
    ("", "unnamed"),
    ("a\nb\tc.csv", "a b c.csv"),
    ("zero\u200bwidth.csv", "zerowidth.csv"),
    ("trailing. ", "trailing"),
])
def test_safe_name(raw, expected):
    assert safe_name(raw) == expected


def test_safe_name_caps_length_and_keeps_the_extension():
    name = safe_name("a" * 300 + ".jsonl")
    assert len(name) <= 100 and name.endswith(".jsonl")
    assert len(safe_name("b" * 300)) <= 100


@pytest.mark.parametrize("raw", ["../../x", "/abs/y", "a" * 300, "\u202egnp.exe", "x\x00y", "con"])
def test_safe_name_is_always_one_plain_component(raw, tmp_path):
    name = safe_name(raw)
    assert "/" not in name and "\\" not in name and "\x00" not in name and not name.startswith(".")
    assert safe_join(tmp_path, name).parent == tmp_path.resolve()


def test_clean_label_is_one_line_without_control_characters():
    assert clean_label("run\n1\x1b[31m\u202e") == "run 1[31m"
    assert len(clean_label("x" * 500)) == 200


# ---- safe_join (the shape of gradio's _safe_join test, 97d541f3d5) -------------------------------
@pytest.mark.parametrize("parts", [["/etc/passwd"], ["..", "..", "etc", "passwd"], ["a/../../b"], ["x\x00y"],
                                   ["..\\..\\x"], ["C:\\x"], [""], ["ok", "/abs"]])
def test_safe_join_refuses_escapes(tmp_path, parts):
    refused(safe_join, tmp_path, *parts)


def test_safe_join_refuses_a_symlink_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    assert "through a link" in refused(safe_join, root, "link", "x")
    assert safe_join(root, "sub", "x.txt") == root.resolve() / "sub" / "x.txt"


# ---- resolve_user_path ---------------------------------------------------------------------------
def test_relative_paths_count_from_the_workspace(ws):
    (ws.datasets / "a.jsonl").write_text("{}\n")
    assert resolve_user_path("datasets/a.jsonl", ws, field="dataset", must_exist=True) == ws.datasets / "a.jsonl"
    assert resolve_user_path(str(ws.datasets / "a.jsonl"), ws, must_exist=True, kind="file") == ws.datasets / "a.jsonl"


@pytest.mark.parametrize("text, words", [
    ("", "no path"),
    ("datasets/a\x00.jsonl", "NUL"),
    ("../../etc/passwd", "'..'"),
    ("datasets/../../../etc/passwd", "'..'"),
    ("/etc/passwd", "outside the workspace"),
    ("~/.ssh/id_rsa", "outside the workspace"),
    ("http://169.254.169.254/latest/meta-data", "download it first"),
    ("https://example.com/data.jsonl", "download it first"),
    ("file:///etc/passwd", "download it first"),
    ("s3://bucket/data.jsonl", "download it first"),
    ("hf://datasets/x/y", "download it first"),
    ("\\\\attacker\\share\\x.csv", "network share"),
    ("//attacker/share/x.csv", "network share"),
    ("C:\\Users\\x.csv", "Windows path"),
    ("datasets\\..\\..\\x", "backslash"),
])
def test_resolve_user_path_refusals(ws, text, words):
    msg = refused(resolve_user_path, text, ws, field="dataset")
    assert words in msg and "dataset" in msg


def test_unc_path_never_reaches_the_file_system(ws, monkeypatch):
    """CVE-2024-34510: stat() on \\\\host\\share leaks credentials on Windows; refuse before any call."""
    calls = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda p, *a, _real=real, **k: calls.append(p) or _real(p, *a, **k))
    refused(resolve_user_path, "\\\\evil\\share\\x", ws)
    refused(resolve_user_path, "//evil/share/x", ws)
    assert not [c for c in calls if "evil" in str(c)]


def test_symlink_that_escapes_is_refused(ws, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("key")
    (ws.datasets / "innocent.jsonl").symlink_to(secret)
    msg = refused(resolve_user_path, "datasets/innocent.jsonl", ws, field="dataset")
    assert "link that points outside" in msg
    (ws.datasets / "dirlink").symlink_to(tmp_path)
    assert "link that points outside" in refused(resolve_user_path, "datasets/dirlink/secret.txt", ws)


def test_symlink_inside_the_workspace_is_fine(ws):
    (ws.datasets / "real.jsonl").write_text("{}\n")
    (ws.datasets / "alias.jsonl").symlink_to(ws.datasets / "real.jsonl")
    assert resolve_user_path("datasets/alias.jsonl", ws) == ws.datasets / "real.jsonl"


def test_workspace_reached_through_a_symlink_is_fine(tmp_path):
    real = Workspace.open(tmp_path / "real")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    (real.datasets / "a.jsonl").write_text("{}\n")
    ws = Workspace(tmp_path / "alias")  # not resolved, as a caller might build it
    assert resolve_user_path(str(tmp_path / "alias" / "datasets" / "a.jsonl"), ws) == real.datasets / "a.jsonl"


def test_allowed_roots_from_settings(ws, tmp_path):
    shared = tmp_path / "shared-data"
    shared.mkdir()
    (shared / "d.csv").write_text("a,b\n")
    refused(resolve_user_path, str(shared / "d.csv"), ws)
    (ws.root / "settings.yaml").write_text(f"allowed_roots:\n  - {shared}\n")
    assert allowed_roots(ws) == [ws.root, *builtin_roots(), shared.resolve()]
    assert resolve_user_path(str(shared / "d.csv"), ws, must_exist=True) == shared / "d.csv"
    # a sibling with the same prefix is not inside (the LLaMA-Factory check_lfi_path weakness)
    evil = tmp_path / "shared-data-evil"
    evil.mkdir()
    (evil / "x.csv").write_text("a\n")
    refused(resolve_user_path, str(evil / "x.csv"), ws)


@pytest.mark.parametrize("content, words", [("allowed_roots: [relative/dir]\n", "absolute"),
                                            ("allowed_roots: [/]\n", "every file"),
                                            ("allowed_roots: [\n", "cannot be read"),
                                            ("- just a list\n", "mapping")])
def test_bad_settings_are_reported(ws, content, words):
    (ws.root / "settings.yaml").write_text(content)
    assert words in refused(allowed_roots, ws)


def test_a_key_written_twice_in_the_settings_is_named_with_its_line(ws):
    """PyYAML's English ("while reading a mapping ... found the key 'allowed_roots' twice") was the message."""
    path = ws.root / "settings.yaml"
    path.write_text("allowed_roots: [/data/a]\nslurm: {}\nallowed_roots: [/data/b]\n")
    with pytest.raises(InputError) as e:
        allowed_roots(ws)
    (problem,) = e.value.problems
    assert (problem.where, problem.msg.code) == (f"{path}:3", "config.key_twice") and problem.msg.params["first"] == 1
    assert "while reading" not in str(e.value)


def test_must_exist_and_kind(ws):
    assert "not found" in refused(resolve_user_path, "datasets/none.jsonl", ws, must_exist=True)
    assert "not a file" in refused(resolve_user_path, "datasets", ws, kind="file")
    (ws.datasets / "f.jsonl").write_text("{}\n")
    assert "not a folder" in refused(resolve_user_path, "datasets/f.jsonl", ws, kind="dir")


# ---- trust.check_config: a config from the page ---------------------------------------------------


def validate_paths(cfg, ws):
    return trust.check_config(cfg, ws, trust.BROWSER)

def test_validate_paths_makes_gui_paths_absolute(ws):
    from core.config import TrainConfig
    (ws.datasets / "d.jsonl").write_text("{}\n")
    cfg = validate_paths(TrainConfig(dataset="datasets/d.jsonl"), ws)
    assert cfg.dataset == str(ws.datasets / "d.jsonl")
    assert cfg.base_model == "builtin:danlu-tiny"  # builtin, preset and hub ids are not paths
    for hub in ("qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct"):
        assert validate_paths(TrainConfig(dataset="datasets/d.jsonl", base_model=hub), ws).base_model == hub


def test_template_sample_data_is_allowed(ws):
    """The Templates tab fills in a shipped sample file; it is read-only data, not the user's disk."""
    from core.config import TrainConfig
    from core.workspace import PRESETS_DIR
    sample = PRESETS_DIR / "templates" / "data" / "demo.jsonl"
    assert validate_paths(TrainConfig(dataset=str(sample)), ws).dataset == str(sample.resolve())
    refused(resolve_user_path, str(PRESETS_DIR / "models" / "danlu-tiny.yaml"), ws)  # only the data folder


def test_validate_paths_reports_every_bad_field(ws):
    from core.config import TrainConfig
    msg = refused(validate_paths, TrainConfig(dataset="/etc/passwd", base_model="/etc"), ws)
    assert "dataset" in msg and "base_model" in msg
    msg = refused(validate_paths, TrainConfig(dataset="../x.jsonl", base_model="https://evil.example/model"), ws)
    assert "'..'" in msg and "download it first" in msg


def test_validate_paths_takes_a_local_model_folder_in_the_workspace(ws):
    from core.config import TrainConfig
    (ws.datasets / "d.jsonl").write_text("{}\n")
    (ws.models / "mine").mkdir()
    cfg = validate_paths(TrainConfig(dataset="datasets/d.jsonl", base_model="models/mine"), ws)
    assert cfg.base_model == str(ws.models / "mine")


def test_check_model_field(ws, tmp_path):
    from core.models import check_model_field
    for name in ("builtin:danlu-tiny", "qwen2.5-0.5b-instruct", "Qwen/Qwen2.5-0.5B-Instruct", "my-export",
                 "20261127-193012-a1b2", ""):
        assert check_model_field(name, ws) == name  # names are looked up by the loaders
    (ws.models / "mine").mkdir()
    assert check_model_field("models/mine", ws) == str(ws.models / "mine")
    assert check_model_field(str(ws.models / "mine"), ws) == str(ws.models / "mine")
    outside = tmp_path / "outside-model"
    outside.mkdir()
    for bad, words in ((str(outside), "outside the workspace"), ("/etc", "outside the workspace"),
                       ("../x", "'..'"), ("~/models/x", "outside the workspace"), ("http://evil.example/m", "web address"),
                       ("file:///etc", "web address"), ("\\\\host\\share\\m", "network share"), ("a\x00b", "NUL"),
                       ("./nothing-here", "not found")):
        assert words in refused(check_model_field, bad, ws, field="model"), bad


def _shell_seams(ws, long: str) -> dict:
    """Every core step that looks at a path the local user typed (the shell passes it as typed)."""
    from core import evaluation, export, memory, method_check, models, runs
    from core.config import TrainConfig, read_yaml
    from core.data import import_file
    return {
        "model folder": lambda: models.resolve_model(long, ws),
        "model name": lambda: models.resolve_model(Path(long).name, ws),
        "config file": lambda: read_yaml(long),
        "adapter folder": lambda: runs.check_adapter_dir(long),
        "run folder": lambda: runs.resolve_trained_run(ws, str(ws.runs / Path(long).name)),
        "start adapter": lambda: method_check.resolve_start_adapter(ws, TrainConfig(start_adapter=long)),
        "eval dataset": lambda: evaluation.submit_eval(ws, "j-1", origin="shell", dataset=long),
        "export folder": lambda: export.export_target(ws, long + "/model", origin="shell"),
        "upload": lambda: import_file(ws, long, origin="shell"),
        "memory estimate": lambda: memory.model_shape(long, ws, origin="shell"),
    }


@pytest.mark.parametrize("seam", list(_shell_seams(None, "/x")))
def test_a_path_too_long_to_exist_is_not_there_at_every_seam(ws, tmp_path, seam):
    """Python 3.11's exists(), is_file() and is_dir() raise OSError 'File name too long' (ENAMETOOLONG) for a
    5,000-character name instead of answering no: each of these stopped with that OSError and the whole path.
    Now such a path is one that is not there (core.paths.exists, is_file, is_dir), said in words."""
    from core.errors import DanluError
    long = str(tmp_path / ("x" * 5000))
    try:
        out = _shell_seams(ws, long)[seam]()
    except DanluError as e:
        assert len(str(e)) < 700 and "xxxxx…" in str(e), str(e)[:900]
    else:
        assert seam == "memory estimate" and out == (None, long)  # no shape known: the page says "unknown model"


def test_a_number_of_5000_digits_in_the_settings_is_a_worded_problem(ws):
    """An admin's settings.yaml with a number of 5,000 digits stopped every path check with ValueError
    ("Exceeds the limit (4300 digits)", from yaml.safe_load): read as YAML a person wrote, it is the value
    of its key, refused in words and quoted short."""
    (ws.root / "settings.yaml").write_text(f"allowed_roots: [{'9' * 5000}]\nslurm:\n  nodes: {'9' * 5000}\n")
    said = refused(allowed_roots, ws)
    assert "is not an absolute folder path" in said and "(5,000 characters)" in said and len(said) < 500, said[:600]
    from core.slurm.executor import spec_for
    with pytest.raises(InputError) as e:
        spec_for(ws)
    text = str(e.value)
    assert "settings.yaml: slurm.nodes: must be a whole number from 1 to 1024, got '999" in text and len(text) < 500, text[:600]
