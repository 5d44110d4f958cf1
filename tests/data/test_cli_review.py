"""`review FILE --scan/--search/--redact/--apply-marks`, run as a user would, with the pinned JSON shapes."""
import argparse
import json

import pytest

from cli import review_cmd
from core.errors import InputError, Problem
from core.messages import Msg
from tests.conftest import run_app


def test_scan_search_and_redact_name_the_lines_check_data_names(home, tmp_path):
    p = tmp_path / "qa.csv"   # record 2 spans lines 3-4: the next record starts on line 5
    p.write_text('question,answer\nHi,Hello\nWhere?,"two\nlines"\nMail?,ann@example.com or +44 20 7946 0958\n'
                 'Card?,4111 1111 1111 1111\n', encoding="utf-8")
    r = run_app("review", p, "--scan", "--json", home=home)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"rows": 4, "hits": [{"line": 5, "kind": "email", "text": "ann@example.com"},
                                                        {"line": 5, "kind": "phone", "text": "+44 20 7946 0958"},
                                                        {"line": 6, "kind": "card", "text": "4111 1111 1111 1111"}]}
    broken = tmp_path / "broken.csv"  # check-data names the same line for a problem in that record
    broken.write_text(p.read_text().replace("Mail?,", ","), encoding="utf-8")
    check = json.loads(run_app("check-data", broken, "--json", home=home).stdout)
    assert [x["line"] for x in check["problems"]] == [5]
    r = run_app("review", p, "--search", "LINES", "--json", home=home)
    assert json.loads(r.stdout) == {"matches": [{"line": 3}]}
    r = run_app("review", p, "--search", r"\d{4} \d{4}", "--regex", "--json", home=home)
    assert json.loads(r.stdout) == {"matches": [{"line": 5}, {"line": 6}]}
    out = tmp_path / "red.jsonl"
    r = run_app("review", p, "--redact", "--kinds", "email,card", "--out", out, home=home)
    assert r.returncode == 0 and "replaced 2 findings" in r.stdout, r.stdout + r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[2] == {"question": "Mail?", "answer": "[EMAIL] or +44 20 7946 0958"} and rows[3]["answer"] == "[CARD]"
    assert p.read_text().count("ann@example.com") == 1       # the input is never changed
    r = run_app("review", p, "--redact", "--kinds", "mail", "--out", tmp_path / "x.jsonl", home=home)
    assert r.returncode == 2 and "unknown kind 'mail'" in r.stderr


def test_apply_marks_leaves_out_the_rows_marked_drop(home, tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("".join(json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}) + "\n" for i in range(1, 6)))
    marks = tmp_path / "marks.csv"
    marks.write_text("row,mark,note\n2,drop,off topic\n4,Drop,\n5,keep,\n", encoding="utf-8")
    out = tmp_path / "train.jsonl"
    r = run_app("review", p, "--apply-marks", marks, "--out", out, home=home)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["prompt"] for line in out.read_text().splitlines()] == ["q1", "q3", "q5"]


def test_a_regex_the_search_cannot_use_names_the_flags_not_the_pages_tick(home, tmp_path):
    """The CLI said "untick “regular expression”", the Review tab's box, which the CLI has not."""
    p = tmp_path / "d.jsonl"
    p.write_text(json.dumps({"prompt": "q", "completion": "a"}) + "\n")
    r = run_app("review", p, "--search", "case (", "--regex", home=home)
    assert r.returncode == 2 and "--search: not a valid regular expression" in r.stderr, r.stderr
    assert "leave out --regex to search for the words" in r.stderr and "untick" not in r.stderr


def test_a_regex_stopped_for_its_time_names_the_flags_too(monkeypatch, tmp_path):
    slow = Problem("search", Msg("review.slow_regex", seconds=15), Msg("review.slow_regex.hint"))
    monkeypatch.setattr(review_cmd, "search_lines", lambda *a: (_ for _ in ()).throw(InputError(problems=[slow])))
    args = argparse.Namespace(search="(a+)+$", regex=True, format="auto")
    with pytest.raises(InputError) as e:
        review_cmd._search(tmp_path / "d.jsonl", args, None)
    said = str(e.value)
    assert "--search: this regular expression took longer than 15 s" in said and "leave out --regex" in said, said
    assert "untick" not in said and slow.hint_msg.code == "review.slow_regex.hint"  # core's own problem left as it was
