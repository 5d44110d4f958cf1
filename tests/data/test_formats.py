"""The five formats: detection, field paths, types, roles and turn order (reliability.md d.3 chat
structure, d.6 content), and the load_examples contract the recipe uses."""
import json

import pytest

from core.data import check_file, load_examples, to_example
from core.data.formats import Schema, guess_column_map
from core.errors import InputError
from tests.data.helpers import chat, codes, first, write_jsonl

SAMPLES = {
    "messages": chat(),
    "sharegpt": {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
    "alpaca": {"instruction": "Summarise", "input": "long text", "output": "short"},
    "prompt_completion": {"prompt": "q", "completion": "a"},
    "text": {"text": "a document"},
}


@pytest.mark.parametrize("fmt", list(SAMPLES))
def test_each_format_is_detected_and_loads(tmp_path, fmt):
    p = write_jsonl(tmp_path / "d.jsonl", [SAMPLES[fmt]] * 3)
    loaded = load_examples(p)
    assert loaded.format == fmt and loaded.rows == 3 and len(loaded.examples) == 3
    ex = loaded.examples[0]
    if fmt == "text":
        assert ex == {"text": "a document"}
    else:
        assert ex["messages"][-1]["role"] == "assistant"
    assert check_file(p).to_dict()["format"] == fmt


def test_alpaca_input_and_system_join_like_before():
    ex, problems = to_example({"instruction": "Do", "input": "this", "output": "ok", "system": "Be brief"}, "alpaca")
    assert problems == [] and ex["messages"] == [{"role": "system", "content": "Be brief"},
                                                 {"role": "user", "content": "Do\n\nthis"},
                                                 {"role": "assistant", "content": "ok"}]


@pytest.mark.parametrize("record,code,field", [
    ({"messages": [{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}]}, "unknown_role", "messages[1].role"),
    ({"messages": [{"role": "user", "content": "q"}, {"content": "a"}]}, "missing_field", "messages[1].role"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}, "missing_field", "messages[1].content"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 42}]}, "wrong_type", "messages[1].content"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " \n\t"}]}, "empty_text", "messages[1].content"),
    ({"messages": "hello"}, "wrong_type", "messages"),
    ({"messages": []}, "empty_text", "messages"),
    ({"messages": ["hi", {"role": "assistant", "content": "a"}]}, "wrong_type", "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
                   {"role": "assistant", "content": "a"}]}, "wrong_type", "messages[0].content[0]"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "robot", "value": "a"}]}, "unknown_role", "conversations[1].from"),
    ({"instruction": "x", "output": None}, "empty_text", "output"),
    ({"instruction": "x", "output": 3.5}, "wrong_type", "output"),
    ({"instruction": "x", "output": "y", "input": ["list"]}, "wrong_type", "input"),
    ({"prompt": "q"}, "missing_field", "completion"),
    ({"text": ""}, "empty_text", "text"),
])
def test_record_problems_have_field_paths(record, code, field):
    fmt = next(f for f, s in SAMPLES.items() if set(s) & set(record)) if "output" not in record else "alpaca"
    ex, issues = Schema(fmt).check(record)
    assert ex is None
    assert (issues[0][0], issues[0][1]) == (code, field), issues


def test_all_problems_of_a_record_at_once():
    rec = {"messages": [{"role": "user", "content": ""}, {"role": "bot", "content": 1}]}
    _, issues = Schema("messages").check(rec)
    assert {i[1] for i in issues} == {"messages[0].content", "messages[1].role", "messages[1].content"}


@pytest.mark.parametrize("roles,message", [
    (["user", "user", "assistant"], "two user messages in a row"),
    (["user", "assistant", "assistant"], "two assistant messages in a row"),
    (["assistant", "user", "assistant"], "expected a user message"),
    (["user", "assistant", "user"], "ends with a user message"),
    (["user", "system", "assistant"], "system message may only come first"),
    (["system"], "no user or assistant messages"),
])
def test_roles_must_alternate(roles, message):
    rec = {"messages": [{"role": r, "content": f"t{i}"} for i, r in enumerate(roles)]}
    _, issues = Schema("messages").check(rec)
    assert issues[0][0] == "turn_order" and message in str(issues[0][2]), issues


def test_good_orders():
    for roles in (["system", "user", "assistant"], ["user", "assistant"] * 3, ["system", "user", "assistant", "user", "assistant"]):
        rec = {"messages": [{"role": r, "content": "x"} for r in roles]}
        assert Schema("messages").check(rec)[1] == []


def test_openai_text_parts_are_joined():
    rec = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                        {"role": "assistant", "content": "c"}]}
    ex, issues = Schema("messages").check(rec)
    assert issues == [] and ex["messages"][0]["content"] == "ab"


def test_mixed_formats_are_called_out(tmp_path):
    rows = [SAMPLES["alpaca"]] * 5 + [SAMPLES["messages"]] * 2
    rep = check_file(write_jsonl(tmp_path / "d.jsonl", rows))
    issue = first(rep, "missing_field")
    assert rep.format == "alpaca" and codes(rep)["missing_field"] == 4  # instruction and output, 2 rows
    assert issue.line == 6 and "looks like messages" in issue.hint


def test_forced_format_and_column_map(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"frage": f"q{i}", "antwort": f"a{i}"} for i in range(10)])
    rep = check_file(p)
    assert first(rep, "unknown_format") and not rep.ok
    loaded = load_examples(p, "prompt_completion", {"prompt": "frage", "completion": "antwort"})
    assert loaded.examples[0]["messages"][1]["content"] == "a0"
    assert guess_column_map(["Question", "Answer"]) == ("prompt_completion", {"prompt": "Question", "completion": "Answer"})


def test_load_examples_raises_with_every_problem(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat()] * 2, raw_lines=["{broken", json.dumps({"messages": [{"role": "user", "content": "q"}]})])
    with pytest.raises(InputError) as e:
        load_examples(p)
    text = str(e.value)
    assert e.value.exit_code == 2
    assert "d.jsonl:3" in text and "malformed JSON" in text and "d.jsonl:4 messages[0].role" in text
    assert "cannot be used for training" in text


def test_load_examples_unknown_format_name(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat()])
    with pytest.raises(InputError, match="unknown format"):
        load_examples(p, "chatml")


def test_template_files_still_load():
    from core.workspace import PRESETS_DIR
    for p in sorted((PRESETS_DIR / "templates" / "data").iterdir()):
        loaded = load_examples(p)
        assert loaded.rows >= 10 and len(loaded.examples) == loaded.rows, p


def test_explicit_format_maps_synonym_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("Question,Response\n" + "".join(f"q{i},a{i}\n" for i in range(10)))
    rep = check_file(p, "alpaca")
    assert rep.ok and rep.column_map == {"instruction": "Question", "output": "Response"}
    assert load_examples(p, "alpaca").examples[0]["messages"] == [{"role": "user", "content": "q0"},
                                                                  {"role": "assistant", "content": "a0"}]


def test_a_long_value_from_the_data_is_quoted_short(tmp_path):
    """A role of 100,000 characters (in a JSONL row, or in a CSV cell holding the turns) was quoted
    whole in its problem: the CLI printed a 100,000-character line, the page a 100,000-character row."""
    role = "x" * 100_000
    turns = [{"role": role, "content": "q"}, {"role": "assistant", "content": "a"}]
    p = write_jsonl(tmp_path / "d.jsonl", [{"messages": turns}])
    csv = tmp_path / "d.csv"
    csv.write_text('messages\n"' + json.dumps(turns).replace('"', '""') + '"\n', encoding="utf-8")
    for report in (check_file(p), check_file(csv)):
        issue = first(report, "unknown_role")
        line = issue.human("d.jsonl")
        assert len(line) < 300, line[:400]
        assert "messages[0].role: unknown role 'xxxxx" in line and "(100,000 characters)" in line
