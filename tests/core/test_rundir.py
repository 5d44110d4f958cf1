"""The run record (core.rundir): its protocol is printed, every file of a run is named only there,
and its helpers read what a crash may leave behind."""
import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path

from core import rundir
from core.rundir import RunDir, append_jsonl, claim_json, read_json, read_jsonl, write_json
from core.workspace import MANIFEST

REPO = Path(__file__).resolve().parents[2]
# production code, plus the stand-ins for the recipes that tests start under the real torchrun
SCANNED = [*REPO.glob("app.py"), *(p for d in ("cli", "core", "webui", "bench") for p in (REPO / d).rglob("*.py")),
           REPO / "tests/jobs/fake_recipe.py", REPO / "tests/webui/fake_recipe.py", REPO / "tests/security/echo_recipe.py"]
FILE_NAMES = {n for n in rundir.NAMES if "." in n} | {MANIFEST}
FOLDER_NAMES = {n for n in rundir.NAMES if "." not in n}
# another record's file that shares a run file's name, named once where that record is defined
OTHER_RECORDS = {("store.py", "dataset.json")}


def test_python_m_core_rundir_prints_the_protocol_naming_every_file():
    out = subprocess.run([sys.executable, "-m", "core.rundir"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in rundir.NAMES:
        assert name in out, name
    assert "atomic" in out and "appended" in out


def literal_names(path: Path) -> list[str]:
    """Run-file names written as literals: a string that IS one of the files, or a folder joined with `/`."""
    found = []
    with warnings.catch_warnings():  # an old invalid escape in a scanned file is not this test's business
        warnings.simplefilter("ignore")
        tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FILE_NAMES \
                and not (path.name == "workspace.py" and node.value == MANIFEST) \
                and (path.name, node.value) not in OTHER_RECORDS:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.right, ast.Constant) \
                and node.right.value in FOLDER_NAMES:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: / {node.right.value!r}")
    return found


def test_no_run_file_is_named_outside_the_run_record():
    found = [hit for path in SCANNED if path.name != "rundir.py" for hit in literal_names(path)]
    assert not found, "name these through core.rundir:\n" + "\n".join(found)


def test_the_scan_finds_a_literal_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('from pathlib import Path\np = Path("run") / "metrics.jsonl"\nq = Path("run") / "adapter"\n')
    global REPO
    repo, REPO = REPO, tmp_path
    try:
        assert len(literal_names(bad)) == 2
    finally:
        REPO = repo


def test_paths_of_a_run(tmp_path):
    run = RunDir(tmp_path)
    assert run.result == tmp_path / "result.json" and run.adapter_info == tmp_path / "adapter" / "danlu.json"
    assert run.rank_error(3) == tmp_path / "errors" / "rank3.json"
    assert run.checkpoint(40) == tmp_path / "checkpoints" / "step-0000040"
    assert run.attempt("j1") == tmp_path / "attempts" / "j1"
    assert RunDir.of_config(tmp_path / "config.yaml").path == tmp_path.resolve()
    assert rundir.after_checkpoint(run.metrics).name == "metrics.after-checkpoint.jsonl"


def test_read_json_is_a_mapping_or_empty(tmp_path):
    p = tmp_path / "x.json"
    assert read_json(p) == {}                 # missing
    p.write_text('{"a": 1')
    assert read_json(p) == {}                 # torn
    p.write_text("[1, 2]")
    assert read_json(p) == {}                 # not a mapping
    p.write_bytes(b"\xff\xfe{")
    assert read_json(p) == {}                 # not text
    write_json(p, {"a": "丹炉"})
    assert read_json(p) == {"a": "丹炉"} and not list(tmp_path.glob(".*.tmp"))


def test_read_jsonl_skips_the_line_being_written_and_bad_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    assert read_jsonl(p) == []
    append_jsonl(p, {"step": 1})
    with open(p, "a") as f:
        f.write("not json\n" + json.dumps({"step": 2}) + "\n" + '{"step": 3')
    assert read_jsonl(p) == [{"step": 1}, {"step": 2}]


def test_claim_json_lets_only_the_first_writer_win(tmp_path):
    p = tmp_path / "error.json"
    assert claim_json(p, {"rank": 1}) is True
    assert claim_json(p, {"rank": 0}) is False
    assert read_json(p) == {"rank": 1} and [x.name for x in tmp_path.iterdir()] == ["error.json"]
