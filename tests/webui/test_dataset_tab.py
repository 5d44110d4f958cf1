"""The Dataset tab's handlers against the data studio (core.data), with plain values."""
import json
from pathlib import Path

import gradio as gr
import pytest

from tests.conftest import REPO
from webui.context import Gui
from webui.tabs import dataset_pairs as dpairs
from webui.tabs import dataset_tab as dt

DEMO = REPO / "presets/templates/data/demo.jsonl"


@pytest.fixture
def gui(services, gui_helper):
    return Gui(services=services, _worker=gui_helper)


@pytest.fixture
def furnaces(uploads) -> Path:
    """The demo dataset, as a file to upload."""
    path = uploads / "furnaces.jsonl"
    path.write_bytes(DEMO.read_bytes())
    return path


@pytest.fixture
def broken(uploads) -> Path:
    lines = DEMO.read_text().splitlines()
    path = uploads / "broken.jsonl"
    path.write_text("\n".join(lines[:6] + ['{"messages": [{"role": "user", "content": "half a line'] + lines[6:10]
                              + [lines[0]]) + "\n")
    return path


def test_upload_copies_the_file_in_and_checks_it(gui, furnaces):
    ds_id, picker = dt.import_upload(gui, str(furnaces), "en")
    assert ds_id.startswith("ds-") and picker["value"] == ds_id
    summary, problems, counts, dataset = dt.check(gui, ds_id, "auto", "", "en")
    assert "furnaces.jsonl" in summary and "**124**" in summary and "messages" in summary
    assert problems.empty and Path(dataset).is_relative_to(gui.ws.datasets)
    assert furnaces.read_bytes() == DEMO.read_bytes()  # the original is never touched


def test_problems_table_names_the_line_and_the_fix(gui, broken):
    ds_id, _ = dt.import_upload(gui, str(broken), "en")
    summary, problems, counts, _ = dt.check(gui, ds_id, "auto", "", "en")
    assert summary.startswith("⚠")
    assert list(problems.columns) == ["line", "field", "message", "fix"]
    row = problems[problems["line"] == "7"]
    assert len(row) == 1 and row["fix"].iloc[0]
    assert "×" in counts
    zh = dt.check(gui, ds_id, "auto", "", "zh-CN")[1]
    assert list(zh.columns) == ["行", "字段", "说明", "修改方法"]


def test_cleaning_makes_a_version_and_undo_goes_back(gui, broken):
    ds_id, _ = dt.import_upload(gui, str(broken), "en")
    message = dt.clean_now(gui, "drop-invalid", ds_id, "builtin:danlu-tiny", 128, "auto", "en")
    assert message.startswith("✓") and "1" in message
    assert "cleaned ×1" in dt.check(gui, ds_id, "auto", "", "en")[0]
    message = dt.clean_now(gui, "dedupe", ds_id, "builtin:danlu-tiny", 128, "auto", "en")
    assert "duplicate" in message
    assert "cleaned ×2" in dt.check(gui, ds_id, "auto", "", "en")[0]
    assert dt.undo(gui, ds_id, "en").startswith("↶")
    assert "cleaned ×1" in dt.check(gui, ds_id, "auto", "", "en")[0]


def test_length_cleaning_says_it_is_working_then_uses_the_models_tokenizer(gui, broken):
    """The operations that load a tokenizer stream: "working" at once, then what changed."""
    ds_id, _ = dt.import_upload(gui, str(broken), "en")
    refused = list(dt.clean(gui, "filter-long", ds_id, "builtin:danlu-tiny", 16, "auto", "en"))
    # the unreadable line 7 must go first; the message names the file as uploaded, not as stored
    assert refused[0] == "Working on it…" and refused[1].startswith("⚠") and "broken.jsonl:7" in refused[1]
    zh = dt.clean_now(gui, "dedupe", ds_id, "", 16, "auto", "zh-CN")
    assert zh.startswith("⚠ **broken.jsonl 有 1 行无法读取") and "修改这一行" in zh, zh
    dt.clean_now(gui, "drop-invalid", ds_id, "", 16, "auto", "en")
    bad = list(dt.clean(gui, "filter-long", ds_id, "no/such-model-anywhere", 16, "auto", "en"))[-1]
    assert bad.startswith("⚠") and "tokenizer" in bad
    steps = list(dt.clean(gui, "filter-long", ds_id, "builtin:danlu-tiny", 16, "auto", "en"))
    assert steps[0] == "Working on it…" and len(steps) == 2
    assert steps[1].startswith("✓") and "cleaned ×2" in dt.check(gui, ds_id, "auto", "", "en")[0]


def test_grid_edits_become_a_version(gui, furnaces):
    ds_id, _ = dt.import_upload(gui, str(furnaces), "en")
    grid = dt.grid(gui, ds_id, 1, "en")
    assert len(grid) == dt.PAGE and list(grid.iloc[:, 0][:2]) == [1, 2]
    record = json.loads(grid.iloc[1, 2])
    record["messages"][1]["content"] = "Edited answer."
    grid.iloc[1, 2] = json.dumps(record)
    grid.iloc[2, 2] = "{not json"
    grid.iloc[3, 2] = "[" * 100_000  # nested past Python's limit: a row that is not JSON, not a crash
    grid.iloc[4, 2] = '{"n": %s}' % ("9" * 5000)  # more digits than Python reads: it stopped the save with ValueError
    message = dt.save_edits(gui, ds_id, 1, grid, "en")
    assert "Saved rows: 2" in message and "row 3: not valid JSON" in message and "row 4: not valid JSON" in message
    assert "row 5: " in message and "edit record: holds a number of 5,000 digits" in message and len(message) < 1500, message
    assert "Edited answer." in dt.grid(gui, ds_id, 1, "en").iloc[1, 2]


def test_grid_edits_with_nan_or_a_key_twice_are_problems_of_their_row(gui, furnaces):
    """A grid row edited to hold NaN, Infinity or a key twice was saved into the new version (Python's json takes
    NaN and keeps the last of two keys): each is now a problem of its row, in words, as in a file."""
    ds_id, _ = dt.import_upload(gui, str(furnaces), "en")
    grid = dt.grid(gui, ds_id, 1, "en")
    for i, value in ((1, "NaN"), (2, "-Infinity")):
        grid.iloc[i, 2] = grid.iloc[i, 2][:-1] + ', "score": %s}' % value
    grid.iloc[3, 2] = grid.iloc[3, 2][:-1] + ', "messages": []}'
    message = dt.save_edits(gui, ds_id, 1, grid, "en")
    assert "row 2: " in message and "edit record: contains NaN, which is not valid JSON" in message, message
    assert "row 3: " in message and "contains -Infinity" in message, message
    assert "row 4: " in message and 'the key "messages" appears twice' in message and "Saved rows" not in message, message
    assert "score" not in dt.grid(gui, ds_id, 1, "en").iloc[1, 2]


def test_insight_answers_at_once_then_gives_lengths_and_the_rendered_example(gui, furnaces):
    ds_id, _ = dt.import_upload(gui, str(furnaces), "en")
    steps = list(dt.insight(gui, ds_id, "builtin:danlu-tiny", 128, False, "auto", 2, "en"))
    assert len(steps) == 2 and "Measuring" in steps[0][1]
    hist, lengths, rendered, *_ = steps[-1]
    rendered = rendered["value"]
    assert hist["value"]["rows"].sum() == 124 and "longer than the maximum length (128): **0**" in lengths
    # bars as wide as their bins, from 0 (plotted at their starts alone they were hairlines, the axis below 0)
    starts = hist["value"]["tokens"].tolist()
    assert starts[0] == 0 and hist["x_bin"] == starts[1] - starts[0] > 1
    assert (hist["x_title"], hist["y_title"]) == ("tokens", "rows")  # words, not Gradio's translation keys
    learned = [text for text, label in rendered if label == "learned"]
    assert learned and "furnace" in "".join(learned)
    assert any(label is None for _, label in rendered)  # the question is shown but not learned


def test_a_maximum_length_that_leaves_no_row_an_answer_is_said_beside_the_lengths(gui, uploads):
    """Every question longer than the maximum length: the check said usable and the lengths line only
    counted 'rows with nothing to learn'; training then stopped with 'Nothing to train on'."""
    src = uploads / "long.jsonl"
    src.write_text("".join(json.dumps(dict(prompt=" ".join(f"word{j}" for j in range(300)), completion=f"answer {i}")) + "\n"
                           for i in range(30)))
    ds_id, _ = dt.import_upload(gui, str(src), "en")
    lengths = list(dt.insight(gui, ds_id, "builtin:danlu-tiny", 64, False, "auto", 1, "en"))[-1][1]
    assert "⚠ no row has any answer left within max_seq_length (64 tokens): training would have nothing to learn" in lengths
    lengths = list(dt.insight(gui, ds_id, "builtin:danlu-tiny", 4096, False, "auto", 1, "en"))[-1][1]
    assert "nothing to learn" not in lengths and "⚠" not in lengths


def test_download_offers_the_current_version(gui, furnaces):
    ds_id, _ = dt.import_upload(gui, str(furnaces), "en")
    assert Path(dt.download(gui, ds_id)).read_bytes() == furnaces.read_bytes()
    assert dt.download(gui, "") is None


def test_without_a_dataset_the_tab_says_what_to_do(gui):
    assert "Upload a file first" in dt.check(gui, "", "auto", "", "en")[0]
    assert "Upload a file first" in list(dt.clean(gui, "filter-long", "", "", 128, "auto", "en"))[-1]
    assert "Upload a file first" in dt.clean_now(gui, "dedupe", "", "", 128, "auto", "en")
    assert isinstance(dt.import_upload(gui, None, "en")[0], type(gr.skip()))


def test_offloaded_work_runs_in_a_helper_that_ends_with_the_gui(uploads):
    """Tokenizer work runs outside the GUI process, and the helper does not outlive a killed GUI."""
    import signal
    import subprocess
    import sys
    import time

    import psutil
    code = ("import os, sys, time; from core.services import Services; from webui.context import Gui; "
            f"g = Gui(services=Services.create({str(uploads)!r})); print(g.offload(os.getpid), flush=True); "
            "time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=str(REPO), stdout=subprocess.PIPE, text=True)
    try:
        helper = int(p.stdout.readline())
        assert helper != p.pid and psutil.pid_exists(helper)
    finally:
        p.send_signal(signal.SIGTERM)  # no clean-up code runs
        p.wait(timeout=30)
    deadline = time.time() + 15
    while psutil.pid_exists(helper) and psutil.Process(helper).status() != psutil.STATUS_ZOMBIE:
        assert time.time() < deadline, "the helper process outlived the GUI"
        time.sleep(0.2)


def test_upload_and_check_answer_together(gui, furnaces):
    ds_id, picker, summary, problems, counts, dataset, fmt, cleaned = dt.upload_and_check(gui, str(furnaces), "auto", "", "en")
    assert cleaned == "" and dt.pick(ds_id) == (ds_id, "")  # a message about the dataset before goes
    assert ds_id.startswith("ds-") and "**124**" in summary and problems.empty and fmt == gr.skip()
    again = dt.check_current(gui, "", str(DEMO), "auto", "", "en")  # a template's sample file, no upload
    assert again[0].startswith("ds-") and "**124**" in again[1]
    assert again[0] == ds_id  # the same bytes are the same dataset


def test_an_upload_the_templates_format_cannot_read_is_read_by_detection(gui, uploads):
    """The demo template sets `messages`; a newcomer then drops a question/answer spreadsheet."""
    src = uploads / "mine.csv"
    src.write_text("question,answer\nWhat fire does the copper furnace use?,Green fire.\nWhat is the pine pill for?,Courage.\n")
    ds_id, _, summary, problems, _, _, fmt, _ = dt.upload_and_check(gui, str(src), "messages", "", "en")
    assert fmt == "auto" and "prompt_completion" in summary and "usable: 2" in summary
    # a file that no format reads keeps the chosen format and shows its problems
    bad = uploads / "notes.csv"
    bad.write_text("colour,size\nred,3\n")
    _, _, summary, problems, _, _, fmt, _ = dt.upload_and_check(gui, str(bad), "messages", "", "en")
    assert fmt == gr.skip() and "`messages`" in summary and not problems.empty


PAIRS = [{"prompt": f"How do I reset router {i}?", "chosen": f"Hold the reset button of router {i} for ten seconds.",
          "rejected": "Figure it out."} for i in range(12)]


def test_a_preference_file_shows_a_pair_side_by_side_with_the_answers_learned(gui, uploads):
    from tests.data.helpers import write_jsonl
    ds_id, _ = dt.import_upload(gui, str(write_jsonl(uploads / "pairs.jsonl", PAIRS + PAIRS[:1])), "en")
    summary = dt.check(gui, ds_id, "auto", "", "en")[0]
    assert "preference" in summary and "13 pairs for 12 prompts" in summary
    assert "13 个回答对，对应 12 个提示" in dt.check(gui, ds_id, "auto", "", "zh-CN")[0]
    steps = list(dt.insight(gui, ds_id, "builtin:danlu-tiny", 128, False, "auto", 3, "en"))
    assert len(steps[0]) == len(steps[-1])  # the early answer skips every output the last one fills
    single, prompt, chosen, rejected, *cleaning = steps[-1][2:]
    assert single["visible"] is False and all(u["visible"] for u in (prompt, chosen, rejected, *cleaning))
    assert "router 2?" in "".join(text for text, _ in prompt["value"])
    assert all(label is None for _, label in prompt["value"])  # the prompt is shown, never learned
    assert "ten seconds" in "".join(text for text, label in chosen["value"] if label == "learned")
    assert "Figure it out." in "".join(text for text, label in rejected["value"] if label == "learned")
    zh = list(dt.insight(gui, ds_id, "builtin:danlu-tiny", 128, False, "auto", 3, "zh-CN"))[-1][4]  # chosen
    assert any(label == "学习" for _, label in zh["value"]), zh["value"]


def test_supervised_files_keep_the_single_example_and_hide_the_pair_parts(gui, furnaces):
    ds_id, _ = dt.import_upload(gui, str(furnaces), "en")
    single, prompt, *rest = list(dt.insight(gui, ds_id, "", 128, False, "auto", 1, "en"))[-1][2:]
    assert single["visible"] and single["value"] and not prompt["visible"] and not any(u["visible"] for u in rest)


def test_pair_cleaning_dedupes_by_prompt_swaps_a_row_and_undoes(gui, uploads):
    from core.data import current_version_path
    from tests.data.helpers import write_jsonl
    ds_id, _ = dt.import_upload(gui, str(write_jsonl(uploads / "pairs.jsonl", PAIRS + PAIRS[:2])), "en")
    assert dpairs.clean_pairs(gui, "dedupe-prompt", ds_id, "en").startswith("✓ removed 2 pairs")
    assert "nothing changed" in dpairs.clean_pairs(gui, "drop-identical", ds_id, "en")
    assert dpairs.swap(gui, ds_id, None, "en").startswith("⚠")
    assert dpairs.swap(gui, ds_id, 3, "zh-CN") == "✓ 第 3 行：已交换 chosen 和 rejected"
    third = json.loads(current_version_path(gui.ws, ds_id).read_text().splitlines()[2])
    assert third["chosen"] == "Figure it out."
    assert dt.undo(gui, ds_id, "en").startswith("↶")
    supervised = uploads / "furnaces.jsonl"
    supervised.write_bytes(DEMO.read_bytes())
    other, _ = dt.import_upload(gui, str(supervised), "en")
    assert "preference pairs only" in dpairs.clean_pairs(gui, "dedupe-prompt", other, "en")


def test_the_preference_template_fills_dpo_and_its_pairs_check_clean(gui):
    from webui import fields
    from webui.tabs import templates_tab as tpl
    values = dict(zip(fields.NAMES, tpl.apply_template(gui, "preference-keeper", "en")))
    assert values["method"] == "dpo" and values["dataset_format"] == "preference"
    assert values["base_model"] == "builtin:danlu-tiny" and Path(values["dataset"]).is_file()
    ds_id, _ = dt.import_upload(gui, values["dataset"], "en")
    summary = dt.check(gui, ds_id, "auto", "", "en")[0]
    assert "preference" in summary and "**384**" in summary and not summary.startswith("⚠")


def test_every_change_of_dataset_or_version_empties_the_download_box(services):
    """The download box kept the file of the dataset before: after choosing another dataset, uploading
    one, a template, cleaning or undo, it still offered 'good-v2.jsonl' beside the new data."""
    from webui.app import build_ui
    cfg = build_ui(services).get_config_file()
    ids = {c["props"].get("elem_id"): c["id"] for c in cfg["components"]}
    deps = cfg["dependencies"]

    def chain(dep):  # the event and every step that follows it
        out, todo = [], [dep]
        while todo:
            d = todo.pop()
            out.append(d)
            todo += [n for n in deps if n.get("trigger_after") == d["id"]]
        return out
    starts = [d for d in deps if (d.get("api_name") or "").startswith(("clean_", "undo_clean", "upload_dataset",
                                                                      "save_dataset_edits", "use_template_demo"))]
    starts += [d for d in deps if d["targets"] and d["targets"][0] == (ids["ds-picker"], "input")]
    assert len(starts) >= 10
    for start in starts:
        assert any(ids["ds-download-file"] in d["outputs"] for d in chain(start)), start.get("api_name") or start["targets"]


@pytest.mark.parametrize("lang", ["ja", "ko", "zh-CN"])
def test_the_length_summary_has_no_english_words_in_cjk_pages(lang):
    """"min 90 … max 90" stayed in English beside the translated median (a browser walk in Japanese)."""
    from webui.tabs.dataset_lengths import lengths_markdown
    text = lengths_markdown({"lengths": {"min": 3, "median": 5, "p95": 9, "max": 12}, "max_seq_length": 128,
                             "over_max": 0, "exact": True}, lang)
    assert not {"min", "max"} & set(text.replace(",", " ").split()), text
