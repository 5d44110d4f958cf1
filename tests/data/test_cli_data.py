"""`check-data` (exit 0 usable / 2 not, FILE:LINE lines, --json) and `clean`, run as a user would."""
import json

from tests.conftest import run_app
from tests.data.helpers import chat, write_jsonl


def test_check_data_ok_and_not_ok(home, tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", [chat(f"q{i}") for i in range(12)])
    r = run_app("check-data", good, home=home)
    assert r.returncode == 0 and "OK: " in r.stdout and "12 rows (messages), all usable" in r.stdout
    bad = write_jsonl(tmp_path / "bad.jsonl", [chat(), {"messages": [{"role": "user", "content": "q"}]}], raw_lines=["{oops"])
    r = run_app("check-data", bad, home=home)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert f"{bad}:2 messages[0].role: the conversation ends with a user message — end each conversation" in lines[0]
    assert lines[1].startswith(f"{bad}:3: malformed JSON at column 2") and " — " in lines[1]
    assert "NOT USABLE" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_check_data_json_shape(home, tmp_path):
    p = tmp_path / "qa.csv"
    p.write_text("question,answer\n" + "".join(f"q{i},a{i}\n" for i in range(11)) + "q,\n")
    r = run_app("check-data", p, "--json", home=home)
    assert r.returncode == 2
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["format"] == "prompt_completion" and out["rows"] == 12
    prob = out["problems"][0]
    assert {"line", "field", "message", "hint"} <= set(prob) and prob["line"] == 13 and prob["field"] == "answer"
    assert any("column 'question' as prompt" in w["message"] for w in out["warnings"])
    r = run_app("check-data", p, "--json", "--format", "prompt_completion", "--map", "prompt=answer",
                "--map", "completion=question", home=home)
    assert json.loads(r.stdout)["ok"] is False  # the empty answer is now the prompt: still a problem


def test_check_data_with_model_counts_tokens(home, tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}", "word " * (5 + 40 * (i % 2))) for i in range(12)])
    r = run_app("check-data", p, "--model", "builtin:danlu-tiny", "--max-seq-length", "64", "--json", home=home)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["tokens"]["over_max"] == 6 and sum(out["tokens"]["histogram"]["counts"]) == 12
    assert any(w["code"] == "too_long" for w in out["warnings"])


def test_check_data_refuses_a_file_no_row_of_which_keeps_an_answer_within_the_limit(home, tmp_path):
    """Every question longer than max_seq_length: check-data warned "30 row(s) have no answer left ...; training
    skips them" and then said "OK: ... all usable" (exit 0), and training stopped with "Nothing to train on"."""
    rows = [dict(prompt=" ".join(f"word{j}" for j in range(300)), completion=f"short answer {i}") for i in range(30)]
    p = write_jsonl(tmp_path / "long.jsonl", rows)
    r = run_app("check-data", p, "--model", "builtin:danlu-tiny", "--max-seq-length", "64", home=home)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no row has any answer left within max_seq_length (64 tokens): training would have nothing to learn" in r.stdout
    assert "NOT USABLE" in r.stdout
    r = run_app("check-data", p, "--model", "builtin:danlu-tiny", "--max-seq-length", "4096", home=home)
    assert r.returncode == 0 and "nothing to learn" not in r.stdout, r.stdout


def test_check_data_bad_arguments(home, tmp_path):
    r = run_app("check-data", tmp_path / "missing.jsonl", home=home)
    assert r.returncode == 2 and "file not found" in r.stderr
    r = run_app("check-data", tmp_path, "--map", "nonsense", home=home)
    assert r.returncode == 2


def test_clean_command(home, tmp_path):
    rows = [chat(f" q{i} ") for i in range(10)]
    src = write_jsonl(tmp_path / "in.jsonl", rows + rows[:2])
    out = tmp_path / "out.jsonl"
    r = run_app("clean", src, "dedupe", "trim", "split", "val_fraction=0.2", "--out", out, home=home)
    assert r.returncode == 0, r.stderr
    assert "dedupe: removed 2 duplicate rows (of 12)" in r.stdout and "trim: trimmed spaces in 10 texts" in r.stdout
    assert "8 for training and 2 for validation" in r.stdout
    assert len(out.read_text().splitlines()) == 8 and (tmp_path / "out.validation.jsonl").exists()
    r = run_app("clean", src, "trim", "--out", src, home=home)
    assert r.returncode == 2 and "is the input file" in r.stderr
    r = run_app("clean", src, "sparkle", "--out", tmp_path / "o2.jsonl", home=home)
    assert r.returncode == 2 and "is not a cleaning operation" in r.stderr


def test_broken_characters_in_keys_still_print(home, tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [], raw_lines=['{"\\ud800key": "x"}', '{"text": "\\ud83d"}'])
    for extra in ((), ("--json",)):
        r = run_app("check-data", p, *extra, home=home)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "unexpected" not in r.stderr, r.stderr
        assert "\\ud800" in r.stdout


def test_clean_never_writes_over_its_input_or_an_existing_file(home, tmp_path):
    """Found by a CLI probe: split's validation file was written wherever --val-out (or its default,
    OUT.validation.jsonl) pointed: over the input itself (124 rows became 12), over an existing file
    without --force, and --val-out = --out stopped with 'unexpected FileNotFoundError'; an --out that
    is a folder stopped with 'unexpected IsADirectoryError'."""
    src = write_jsonl(tmp_path / "data.validation.jsonl", [chat(f"q{i}") for i in range(10)])
    before = src.read_bytes()
    r = run_app("clean", src, "split", "val_fraction=0.2", "--out", tmp_path / "o.jsonl", "--val-out", src, home=home)
    assert r.returncode == 2 and "--val-out: is the input file" in r.stderr, r.stderr
    r = run_app("clean", src, "split", "val_fraction=0.2", "--out", tmp_path / "data.jsonl", home=home)  # the default
    assert r.returncode == 2 and "--val-out: is the input file" in r.stderr, r.stderr
    assert src.read_bytes() == before
    other = tmp_path / "keep.jsonl"
    other.write_text("mine\n")
    r = run_app("clean", src, "split", "val_fraction=0.2", "--out", tmp_path / "o.jsonl", "--val-out", other, home=home)
    assert r.returncode == 2 and "already exists" in r.stderr and other.read_text() == "mine\n"
    r = run_app("clean", src, "split", "--out", tmp_path / "o.jsonl", "--val-out", tmp_path / "o.jsonl", home=home)
    assert r.returncode == 2 and "--val-out: is the same file as --out" in r.stderr, r.stderr
    for verb in (("clean", src, "trim"), ("review", src, "--redact")):
        r = run_app(*verb, "--out", tmp_path, "--force", home=home)
        assert r.returncode == 2 and f"{tmp_path} is a folder" in r.stderr and "unexpected" not in r.stderr, r.stderr
    assert not (tmp_path / "o.jsonl").exists() and src.read_bytes() == before


def test_clean_edit_of_a_row_that_is_not_there_fails(home, tmp_path):
    """It exited 0 with "nothing changed" and wrote OUT, the file unchanged."""
    src = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(2)])
    out = tmp_path / "out.jsonl"
    r = run_app("clean", src, "edit", "row=99999999999", "record=" + json.dumps(chat("x")), "--out", out, home=home)
    assert r.returncode == 2 and "edit row: row 99999999999 not found (the file has 2 rows)" in r.stderr, r.stdout + r.stderr
    assert "give a row number from 1 to 2" in r.stderr and not out.exists()


def test_clean_delete_of_a_row_that_is_not_there_fails(home, tmp_path):
    """`clean FILE delete rows=3,99` on a 5-row file deleted row 3 and exited 0."""
    src = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(5)])
    out = tmp_path / "out.jsonl"
    r = run_app("clean", src, "delete", "rows=3,99", "--out", out, home=home)
    assert r.returncode == 2 and "delete rows: row 99 not found (the file has 5 rows)" in r.stderr, r.stdout + r.stderr
    assert "give a row number from 1 to 5" in r.stderr and "row 3 " not in r.stderr and not out.exists()
