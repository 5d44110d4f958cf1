"""Preference pairs (issue 18, Data): the three spellings read into one normalised example, the
line-by-line checks (missing side, same text, prompts that differ, empty answers, a prompt not
ending with the user), the duplicate-prompt warning, column mapping and the check-data summary."""
import json

import pytest

from core.data import check_file, load_examples
from core.errors import InputError
from tests.conftest import run_app
from tests.data.helpers import codes, first, write_jsonl

U = lambda t: {"role": "user", "content": t}  # noqa: E731
A = lambda t: {"role": "assistant", "content": t}  # noqa: E731
WANT = {"prompt": [U("Q")], "chosen": [A("Good.")], "rejected": [A("Bad.")]}

SPELLINGS = {
    "strings": {"prompt": "Q", "chosen": "Good.", "rejected": "Bad."},
    "message lists": {"prompt": [U("Q")], "chosen": [A("Good.")], "rejected": [A("Bad.")]},
    "sharegpt": {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "Good."},
                 "rejected": {"from": "gpt", "value": "Bad."}},
    "sharegpt lists": {"conversations": [{"from": "human", "value": "Q"}], "chosen": [{"from": "gpt", "value": "Good."}],
                       "rejected": [{"from": "gpt", "value": "Bad."}]},
    "shared history": {"chosen": [U("Q"), A("Good.")], "rejected": [U("Q"), A("Bad.")]},
    "prompt beside whole conversations": {"prompt": "Q", "chosen": [U("Q"), A("Good.")], "rejected": [U("Q"), A("Bad.")]},
}


def pairs(n: int, **extra) -> list[dict]:
    return [{"prompt": f"Question {i}?", "chosen": f"A full, kind answer {i}.", "rejected": f"No {i}.", **extra}
            for i in range(n)]


@pytest.mark.parametrize("name", list(SPELLINGS))
def test_each_spelling_loads_as_the_normalised_pair(tmp_path, name):
    p = write_jsonl(tmp_path / "d.jsonl", [SPELLINGS[name]] * 3)
    loaded = load_examples(p)
    assert loaded.format == "preference" and loaded.rows == 3
    assert loaded.examples == [WANT] * 3


def test_a_longer_shared_history_becomes_the_prompt(tmp_path):
    hist = [{"role": "system", "content": "Be kind."}, U("Hi"), A("Hello."), U("Q")]
    p = write_jsonl(tmp_path / "d.jsonl", [{"chosen": hist + [A("Good.")], "rejected": hist + [A("Bad.")]}] * 2)
    ex = load_examples(p, "preference").examples[0]
    assert ex == {"prompt": hist, "chosen": [A("Good.")], "rejected": [A("Bad.")]}


def test_a_system_field_goes_in_front_of_the_prompt(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{**SPELLINGS["strings"], "system": "Be kind."}] * 2)
    assert load_examples(p).examples[0]["prompt"] == [{"role": "system", "content": "Be kind."}, U("Q")]


def test_column_map_names_the_users_columns(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"question": "Q", "good": "Good.", "bad": "Bad."}] * 2)
    loaded = load_examples(p, "preference", {"prompt": "question", "chosen": "good", "rejected": "bad"})
    assert loaded.examples == [WANT] * 2
    auto = load_examples(p, "auto", {"chosen": "good", "rejected": "bad", "prompt": "question"})
    assert auto.format == "preference"


def test_synonym_columns_are_mapped_automatically(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Q", "better": "Good.", "worse": "Bad."}] * 2)
    rep = check_file(p)
    assert rep.format == "preference" and rep.ok and rep.column_map == {"chosen": "better", "rejected": "worse"}


def test_every_problem_of_every_pair_with_its_line_and_a_fix(tmp_path):
    good = pairs(3)
    bad = [
        {"prompt": "x", "chosen": "ok"},                                                       # line 4: missing side
        {"prompt": "x", "chosen": "same", "rejected": " same "},                               # 5: same text
        {"chosen": [U("Q"), A("a")], "rejected": [U("Other"), A("b")]},                        # 6: histories differ
        {"prompt": "x", "chosen": "", "rejected": "b"},                                        # 7: empty answer
        {"prompt": [U("Hi"), A("Yo")], "chosen": "a", "rejected": "b"},                        # 8: prompt ends with assistant
        {"chosen": [U("Q")], "rejected": [U("Q"), A("b")]},                                    # 9: conversation without answer
        {"chosen": "a", "rejected": "b"},                                                      # 10: no prompt
        {"prompt": "Elsewhere", "chosen": [U("Q"), A("a")], "rejected": [U("Q"), A("b")]},     # 11: prompt differs
    ]
    p = write_jsonl(tmp_path / "d.jsonl", good + bad)
    rep = check_file(p, "preference")
    assert not rep.ok and rep.usable == 3
    by_line = {i.line: i for i in rep.problems()}
    assert set(by_line) == set(range(4, 12)), by_line
    expect = {4: ("missing_field", "rejected"), 5: ("same_answers", "drop identical pairs"),
              6: ("prompt_mismatch", "same earlier turns"), 7: ("empty_text", "write the text"),
              8: ("turn_order", "last user message"), 9: ("empty_text", "add the assistant"),
              10: ("missing_field", "prompt"), 11: ("prompt_mismatch", "prompt")}
    for line, (code, words) in expect.items():
        issue = by_line[line]
        assert issue.code == code, (line, issue.code)
        assert words in issue.human("d.jsonl"), issue.human("d.jsonl")
    with pytest.raises(InputError) as e:
        load_examples(p, "preference")
    said = str(e.value)
    assert "d.jsonl:4" in said and "d.jsonl:11" in said


def test_repeated_prompts_warn_without_blocking(tmp_path):
    rows = pairs(12) + [{"prompt": "question 3? ", "chosen": "Another good answer.", "rejected": "Meh."}]
    rep = check_file(write_jsonl(tmp_path / "d.jsonl", rows))
    assert rep.ok and codes(rep)["duplicate_prompt"] == 1
    issue = first(rep, "duplicate_prompt")
    assert issue.line == 13 and "line 4" in issue.message
    assert rep.to_dict()["pairs"] == {"pairs": 13, "prompts": 12}


def test_check_data_names_the_format_and_counts_pairs(tmp_path, home):
    p = write_jsonl(tmp_path / "d.jsonl", pairs(12) + pairs(1))
    r = run_app("check-data", str(p), home=home)
    assert r.returncode == 0, r.stderr
    assert "13 pairs (preference) for 12 prompts" in r.stdout
    data = json.loads(run_app("check-data", str(p), "--json", home=home).stdout)
    assert data["format"] == "preference" and data["pairs"] == {"pairs": 13, "prompts": 12}
