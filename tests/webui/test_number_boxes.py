"""Number boxes and sliders outside the Hyperparameters tab, sent straight to the HTTP API (gradio_client or
a POST): a number of 5,000 digits, 1e999, NaN, -1 or text reaches the handler, which refuses it in the
page's language, the value quoted short. Each stopped the handler with ValueError, OverflowError or
TypeError (the page showed a bare "Error"), or Gradio refused it in its own English words.
"""
import math

import gradio as gr
import pytest

from core import data as D
from core.presets import compose
from tests.data.review_data import make_rows, write_rows
from tests.webui.test_dataset_tab import DEMO
from webui import fields
from webui.tabs import chat_share, chat_tab, dataset_grid, dataset_lengths, dataset_pairs, dataset_tab, evaluate_tab
from webui.i18n import tr
from webui.tabs import hyperparams_tab as hp
from webui.tabs import review_handlers as H
from webui.tabs import train_tab as tt

HUGE = 10 ** 5000  # an int of 5,001 digits: str() of it raises ValueError
HOSTILE = [HUGE, "9" * 5000, math.inf, math.nan, -1, "abc"]
IDS = ["5001-digit-int", "5000-digit-text", "1e999", "nan", "-1", "text"]


def said_short(text: str, value, limit: int = 1200) -> str:
    """The refusal quotes the value short: its head and its length past 200 characters."""
    if value in (HUGE, "9" * 5000):
        assert "（全 5,00" in text and "文字）" in text, text[:600]
    assert len(text) < limit and "Traceback" not in text, text[:1500]
    return text


@pytest.fixture
def ds_id(gui, uploads):
    src = uploads / "furnaces.jsonl"
    src.write_bytes(DEMO.read_bytes())
    return D.import_file(gui.ws, str(src), "furnaces.jsonl", origin="shell")["id"]


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_evaluate_chat_and_demo_numbers(gui, value):
    _, said, _ = evaluate_tab.start_eval(gui, "ja", "some-run", value, 128)
    assert "1 から 100000 の間にしてください" in said_short(said, value)
    assert f"**{tr('ev.max_samples', 'ja')}**" in said and "max_samples" not in said  # the box's label
    _, said, _ = evaluate_tab.start_eval(gui, "ja", "some-run", 200, value)
    assert "1 から 8192 の間にしてください" in said_short(said, value)
    assert f"**{tr('ev.max_new_tokens', 'ja')}**" in said and "max_new_tokens" not in said
    for i, slider in enumerate(("温度", "Top-p", "最長の回答（トークン）", "繰り返しペナルティ")):
        sampling = [0.7, 0.9, 256, 1.1]
        sampling[i] = value
        out = list(chat_tab.answer(gui, None, "ja", "builtin:danlu-tiny", None, False, "", *sampling,
                                   [{"role": "user", "content": "hi"}], []))
        (tuned, base, note), = out  # one answer, before any model loads
        assert tuned[-1]["role"] == "assistant" and tuned[-1]["content"].startswith(f"⚠ {slider}：")
        assert "してください（現在は" in said_short(tuned[-1]["content"], value) and base == gr.skip()
    said, _, _ = chat_share.start_demo(gui, "ja", "builtin:danlu-tiny", None, "", "127.0.0.1", value, "", "", False)
    assert "1024 から 65535 の間にしてください" in said_short(said, value)
    assert f"**{tr('chat.demo_port', 'ja')}**" in said


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_dataset_tab_numbers(gui, ds_id, value):
    with pytest.raises(gr.Error) as e:  # the grid alone answers: the page's error box, in its language
        dataset_grid.grid(gui, ds_id, value, "ja")
    assert "表示する最初の行" in said_short(e.value.message, value) and "までの整数でなければなりません" in e.value.message
    said = dataset_grid.save_edits(gui, ds_id, value, dataset_grid.grid(gui, ds_id, 1, "ja"), "ja")
    assert "表示する最初の行" in said_short(said, value)
    said = dataset_pairs.swap(gui, ds_id, value, "ja")
    assert "入れ替える行" in said_short(said, value)
    said = dataset_tab.clean_now(gui, "filter-long", ds_id, "builtin:danlu-tiny", value, "auto", "ja")
    assert "最大長（トークン）" in said_short(said, value) and any(w in said for w in ("範囲外", "整数ではありません", "小さすぎます"))
    for length, example, box in ((value, 1, "max_seq_length"), (1024, value, "例の行")):
        *_, last = dataset_lengths.insight(gui, ds_id, "builtin:danlu-tiny", length, False, "auto", example, "ja")
        assert box in said_short(last[1], value) and "までの整数でなければなりません" in last[1]


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_review_token_bounds(gui, value, tmp_path):
    ds = D.import_file(gui.ws, write_rows(tmp_path / "d.jsonl", make_rows(30)), "d.jsonl", origin="shell")["id"]
    for at in (6, 7):  # tokens from, tokens up to
        fs = ["", False, H.ALL, H.ALL, H.ALL, H.ALL, 0, 0, "position"]
        fs[at] = value
        text = H.show(gui, ds, *fs, "", "ja")[0]
        assert ("トークン数" in text) and "0 から 1,000,000,000 までの整数" in said_short(text, value)


@pytest.mark.parametrize("value", HOSTILE, ids=IDS)
def test_train_tab_numbers(gui, value):
    values = fields.config_values(compose("demo"), fields.NAMES)
    _, said, _ = tt.start_training(gui, "ja", ["cpu"], value, *values)
    assert "プロセス数" in said_short(said, value) and "1 から 64 までの整数" in said
    said = hp.show_command(gui, "ja", ["cpu"], value, *values)
    assert "プロセス数" in said_short(said, value)
    for nodes, gpus in ((value, 1), (1, value)):
        _, said, _ = tt.start_on_cluster(gui, "ja", 1, "", nodes, gpus, "", False, *values)
        assert "までの整数でなければなりません" in said_short(said, value), said


def test_the_boxes_hand_what_gradio_cannot_read_to_the_handler():
    """Over HTTP, Gradio read a box before its handler: -1 under its minimum was 'Value -1 is less than minimum
    value 0.' in English; NaN, 1e999 and text stopped the event. Now the handler gets them as sent."""
    from webui import numbers
    box, slider = numbers.Number(1, precision=0, minimum=0), numbers.Slider(0.0, 2.0, value=0.7)
    assert box.preprocess(-1) == -1 and box.preprocess("abc") == "abc" and box.preprocess(math.inf) == math.inf
    assert math.isnan(box.preprocess(math.nan)) and box.preprocess(2.4) == 2 and box.preprocess(None) is None
    assert slider.preprocess(7) == 7 and slider.preprocess("abc") == "abc" and slider.preprocess(0.5) == 0.5
    assert type(box) is gr.Number and type(slider) is gr.Slider  # Gradio's own components
