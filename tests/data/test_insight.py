"""Insight: token lengths against max_seq_length, and a preview whose highlighted tokens are exactly
the tokens training learns (reliability.md d.6: too-long rows, wrong-way-round mapping preview)."""
import pytest

from core.data import insight
from core.data.render import IGNORE, load_tokenizer, render, segments, text_segments
from core.workspace import Workspace
from tests.data.helpers import chat, write_jsonl


@pytest.fixture
def tok(home):
    return load_tokenizer("builtin:danlu-tiny", Workspace.open(home))


def test_preview_marks_exactly_the_trained_tokens(tok):
    from core.engine.sft_data import EncodeStats, encode_example
    ex = chat("What is tea?", "Leaves in hot water.", system="Be brief.")
    ex["messages"] += [{"role": "user", "content": "And coffee?"}, {"role": "assistant", "content": "Roasted beans."}]
    trained_ids = [lab for lab in encode_example(tok, ex, 512, False, EncodeStats())[0].labels if lab != IGNORE]
    segs = segments(render(tok, ex), 512)
    trained_text = "".join(s["text"] for s in segs if s["trained"])
    assert "Leaves in hot water." in trained_text and "Roasted beans." in trained_text
    assert "What is tea?" not in trained_text and "Be brief." not in trained_text
    # re-tokenising the highlighted runs gives the training labels back
    again = [i for s in segs if s["trained"] for i in tok(s["text"], add_special_tokens=False)["input_ids"]]
    assert again == trained_ids
    assert "".join(s["text"] for s in segs) == tok.apply_chat_template(ex["messages"], tokenize=False)


def test_preview_shows_truncation_and_train_on_inputs(tok):
    ex = chat("q " * 10, "answer " * 50)
    r = render(tok, ex)
    segs = segments(r, max_len=20)
    assert any(s["truncated"] for s in segs) and not any(s["trained"] and s["truncated"] for s in segs)
    everything = segments(render(tok, ex, train_on_inputs=True), 10_000)
    assert all(s["trained"] for s in everything)


def test_insight_histogram_and_over_max(home, tmp_path):
    rows = [chat(f"q{i}", "short answer") for i in range(20)] + [chat("long", "word " * 300) for _ in range(5)]
    p = write_jsonl(tmp_path / "d.jsonl", rows)
    info = insight(p, model="builtin:danlu-tiny", max_seq_length=128, ws=Workspace.open(home), preview=20)
    assert info["ok"] and info["format"] == "messages" and info["rows"] == 25 and info["exact"]
    assert info["over_max"] == 5 and info["measured_rows"] == 25 and not info["sampled"]
    assert sum(info["histogram"]["counts"]) == 25 and info["histogram"]["edges"][-1] >= info["lengths"]["max"]
    assert info["lengths"]["max"] > 128 > info["lengths"]["min"]
    pv = info["preview"]
    assert pv["index"] == 20 and pv["line"] == 21 and pv["truncated"] and pv["learns_something"]
    assert pv["trained_tokens"] < pv["tokens"]


def test_insight_samples_big_files(home, tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(100)])
    info = insight(p, model="builtin:danlu-tiny", ws=Workspace.open(home), sample=10)
    assert info["sampled"] and info["measured_rows"] == 10 and sum(info["histogram"]["counts"]) == 10


def test_insight_without_a_model_is_an_estimate(tmp_path):
    p = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Why?", "completion": "Because."}] * 3)
    info = insight(p)
    assert not info["exact"] and info["preview"]["segments"][-1] == {"text": "Because.<|im_end|>\n", "trained": True,
                                                                     "truncated": False}
    assert text_segments({"text": "doc"}) == [{"text": "doc", "trained": True, "truncated": False}]


def test_insight_of_an_unusable_file(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("{bad\n")
    info = insight(p)
    assert not info["ok"] and info["histogram"] is None and info["preview"] is None and info["problem_count"] == 1


def test_template_that_refuses_a_role_is_reported(home, tmp_path):
    ws = Workspace.open(home)
    tok = load_tokenizer("builtin:danlu-tiny", ws)
    # a template like Gemma's, which raises on a system message
    strict = ("{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
              "{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    folder = tmp_path / "strict-model"
    import shutil
    shutil.copytree(home / "models" / "danlu-tiny", folder)
    tok.chat_template = strict
    tok.save_pretrained(folder)
    p = write_jsonl(tmp_path / "d.jsonl", [chat("q", "a", system="sys"), chat("q2", "a2")])
    info = insight(p, model=str(folder), ws=ws, preview=1)
    assert info["template_error"]["count"] == 1 and "System role not supported" in info["template_error"]["message"]
    assert info["template_error"]["line"] == 1 and info["measured_rows"] == 1 and info["preview"]["index"] == 1
