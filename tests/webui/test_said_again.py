"""Every tab's action line is said again in the new language after a language switch: the events of
the built app are called as the page calls them (their handler, the hidden box of words in every
language), then the switch's light answer (webui.app._wire_language) with what those boxes hold, or
every answer of the switch (Page.switch_all: also the ones after the light answer and the tabs' own).
Before, only the Train tab's line was; the others kept the old language."""
import json
import re

import gradio as gr
import pytest

from core import data as D
from core import progress
from core.errors import InputError
from tests.conftest import REPO
from webui import i18n
from webui.app import build_ui
from webui.page_script import SET_LANGUAGE_JS
from webui.context import Gui
from webui.i18n import tr
from webui.jobview import status_markdown
from webui.tabs import chat_share, dataset_lengths, dataset_tab, evaluate_tab, review_handlers

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def skipped(v) -> bool:
    """gr.skip() (a value may be a table, which == compares cell by cell)."""
    return isinstance(v, dict) and v == gr.skip()


class Page:
    """The built app's events, called with plain values, and the boxes they filled."""

    def __init__(self, gui):
        self.gui = gui
        self.blocks = build_ui(gui.services, gui)
        self.kept = {}  # component id -> the last value an event answered it

    def component(self, elem_id):
        return next(b for b in self.blocks.blocks.values() if getattr(b, "elem_id", None) == elem_id)

    def event(self, api_name=None, handler=None):
        def inner(fn):
            while hasattr(fn, "func"):
                fn = fn.func
            return fn
        return next(f for f in self.blocks.fns.values()
                    if (api_name and f.api_name == api_name) or (handler and f.fn and inner(f.fn) is handler))

    def call(self, *args, api_name=None, handler=None) -> dict:
        """The event's answer by output elem_id (a generator's last one); its values are kept."""
        f = self.event(api_name, handler)
        out = f.fn(*args)
        if f.types_generator:
            out = list(out)[-1]
        out = list(out) if isinstance(out, (tuple, list)) else [out]
        assert len(out) == len(f.outputs), (api_name, len(out), len(f.outputs))
        for c, v in zip(f.outputs, out):
            if not skipped(v):
                self.kept[c._id] = v
        return {c.elem_id: v for c, v in zip(f.outputs, out)}

    def call_all(self, *args, api_name) -> dict:
        """call(), then every event after it, as the page runs them (see run): the last value each output
        got, by elem_id."""
        f = self.event(api_name)
        return {**self.call(*args, api_name=api_name), **self.run(self.after(f))}

    def after(self, f) -> list:
        return [g for g in self.blocks.fns.values() if g.trigger_after == f._id]

    def switch(self, lang: str) -> dict:
        """The language switch's light answer, by output elem_id."""
        f = next(f for f in self.blocks.fns.values() if f.js == SET_LANGUAGE_JS)
        args = [lang] + [self.kept.get(c._id, "") for c in f.inputs[1:]]
        return {getattr(c, "elem_id", None): v for c, v in zip(f.outputs, f.fn(*args))}

    def switch_all(self, lang: str) -> dict:
        """Every answer of a language switch (the light one, the events after it, each tab's own), run
        in the page's order with what the page holds: the last value each output got, by elem_id."""
        self.kept[self.component("language")._id] = lang
        return self.run([f for f in self.blocks.fns.values() if (self.component("language")._id, "change") in f.targets
                         and f.fn])

    def run(self, todo: list) -> dict:
        """These events and the ones after each, in the page's order, with what the page holds."""
        seen = {}
        while todo:
            f = todo.pop(0)
            out = f.fn(*(self.kept.get(c._id, c.value) for c in f.inputs))
            out = list(out)[-1] if f.types_generator else out
            out = list(out) if isinstance(out, (tuple, list)) else [out]
            for c, v in zip(f.outputs, out):
                if not skipped(v):
                    seen[getattr(c, "elem_id", None)] = self.kept[c._id] = v
            todo += self.after(f)
        return seen


@pytest.fixture
def page(services, gui_helper):
    return Page(Gui(services=services, _worker=gui_helper))


def test_evaluate_and_export_lines_are_said_again(page):
    out = page.call("en", "some-run", -1, 16, api_name="run_evaluation")  # without a job it says nothing: the summary does
    assert tr("ev.cannot_start", "en") in out["ev-status"]
    page.call("en", None, "", "bf16", api_name="merge_export")
    page.call("en", None, api_name="stop_export")
    again = page.switch("zh-CN")
    assert tr("ev.cannot_start", "zh-CN") in again["ev-status"] and tr("ev.cannot_start", "en") not in again["ev-status"]
    assert again["ex-status"] == tr("ex.no_job", "zh-CN")  # Stop's line, the last one Export wrote
    assert tr("ev.cannot_start", "ja") in page.switch("ja")["ev-status"]


def test_a_jobs_status_line_from_the_timer_is_said_again(page):
    """Evaluate and Export show their job's status in the same line: the timer's last answer (a job that
    ended stops the timer) is what a switch says again."""
    store = page.gui.store
    job = store.create(kind="eval", name="x", run_dir=str(page.gui.ws.runs / "x"))
    out = page.call("en", job.id, None, handler=evaluate_tab.poll)
    st = progress.status(store.get(job.id))
    assert out["ev-status"] == status_markdown(st, "en")
    assert page.switch("ko")["ev-status"] == status_markdown(st, "ko") != status_markdown(st, "en")


def test_the_dataset_tabs_cleaning_line_is_said_again_and_a_new_dataset_forgets_it(page, uploads):
    gui = page.gui
    src = uploads / "demo.jsonl"
    lines = (REPO / "presets/templates/data/demo.jsonl").read_text().splitlines()
    src.write_text("\n".join(lines + lines[:2]) + "\n")  # two rows twice
    ds = D.import_file(gui.ws, src, "demo.jsonl", origin="shell")["id"]
    said = page.call(ds, "builtin:danlu-tiny", 128, "auto", "en", api_name="clean_dedupe")["ds-clean-message"]
    assert said.startswith("✓ ")
    zh = page.switch("zh-CN")["ds-clean-message"]
    assert zh != said and CJK.search(zh) and not CJK.search(said)
    undone = page.call(ds, "en", api_name="undo_clean")["ds-clean-message"]
    assert undone.startswith("↶ ") and page.switch("es")["ds-clean-message"].startswith("↶ ")
    assert page.switch("es")["ds-clean-message"] != undone
    page.call("", "en", api_name="undo_clean")
    assert page.switch("ja")["ds-clean-message"] == tr("ds.none", "ja")
    page.call(ds, handler=dataset_tab.pick)  # another dataset chosen: the message is emptied, and stays so
    assert page.switch("en")["ds-clean-message"] == gr.skip()


def test_a_cleaning_that_streams_keeps_its_last_line(page):
    out = page.call("", "builtin:danlu-tiny", 128, "auto", "ko", api_name="clean_filter_long")
    assert out["ds-clean-message"] == tr("ds.none", "ko")
    assert page.switch("zh-CN")["ds-clean-message"] == tr("ds.none", "zh-CN")


def test_the_review_tabs_line_is_said_again(page, tmp_path):
    from tests.data.review_data import make_rows, write_rows
    gui = page.gui
    ds = D.import_file(gui.ws, write_rows(tmp_path / "d.jsonl", make_rows(12)), "d.jsonl", origin="shell")["id"]
    view = review_handlers.view(gui, ds, review_handlers.filters("", False, *["all"] * 4, 0, 0, "position"), "", "en")
    out = page.call(ds, view[7], view[6], "", "en", api_name="review_keep")
    assert out["rv-message"] == "✓ Marked row 1: Keep"
    zh = "✓ " + tr("rv.marked", "zh-CN").format(row=1, mark=tr("rv.mark.keep", "zh-CN"))
    assert page.switch("zh-CN")["rv-message"] == zh


def test_the_chat_tabs_lines_are_said_again(page):
    assert page.call("en", api_name="chat_unload")["chat-note"] == f"{tr('chat.unloaded', 'en')}: 0"
    assert page.call("en", None, api_name="stop_demo")["demo-message"] == tr("chat.no_demo", "en")
    again = page.switch("ja")
    assert again["chat-note"] == f"{tr('chat.unloaded', 'ja')}: 0" and again["demo-message"] == tr("chat.no_demo", "ja")
    refused = page.call("en", "0.0.0.0", "", "", False, handler=chat_share.demo_starting)["demo-message"]
    assert refused.startswith("⚠") and page.switch("zh-CN")["demo-message"].startswith("⚠ **" + tr("chat.cannot_start", "zh-CN"))


def test_the_template_note_and_the_load_config_note_are_said_again(page, uploads):
    note = page.call("en", "{}", api_name="use_template_demo")["tpl-chosen"]
    assert note.startswith(f"✓ {tr('tpl.chosen', 'en')} **demo**")
    bad = uploads / "typo.yaml"
    bad.write_text("lora_rnak: 8\n")
    assert "lora_rnak" in page.call(str(bad), "en", "{}", api_name="load_config")["hp-loaded"]
    again = page.switch("es")
    assert again["tpl-chosen"].startswith(f"✓ {tr('tpl.chosen', 'es')} **demo**") and tr("tpl.next", "es") in again["tpl-chosen"]
    assert "lora_rnak" in again["hp-loaded"] and tr("hp.load_notes", "es") in again["hp-loaded"]


def test_a_plain_line_empties_the_box_and_a_generator_stays_one():
    """A handler line in one language only leaves nothing to say again (the older line must not come back)."""
    plain = i18n.keep_said(lambda lang: "plain", 0)
    assert plain("en") == ("plain", "")
    assert i18n.keep_said(lambda: (gr.skip(), gr.skip()), 1)() == (gr.skip(), gr.skip(), gr.skip())

    def lines(lang):
        yield i18n.said_in_all(lambda code: tr("ds.working", code), lang)
        yield "done"
    streamed = list(i18n.keep_said(lines, 0)("en"))
    assert json.loads(streamed[0][1])["zh-CN"] == tr("ds.working", "zh-CN") and streamed[1] == ("done", "")


def test_why_an_evaluation_or_an_export_failed_is_said_again(page):
    """The failure box (what went wrong and what to do) of the Evaluate and Export tabs follows a switch:
    rendered again from the job; with no job shown it is left as it is."""
    from core import jobs as J
    from core.messages import Msg
    store = page.gui.store
    for kind, elem in (("eval", "ev"), ("merge", "ex")):
        job = store.create(kind=kind, name="x", run_dir=str(page.gui.ws.runs / f"x-{kind}"))
        assert store.transition(job.id, J.FAILED, reason="cuda_oom", message=Msg("fail.cuda_oom"), hint=Msg("fail.oom_lower"))
        page.kept[page.component(f"{elem}-job")._id] = job.id
    again = page.switch("zh-CN")
    for elem in ("ev", "ex"):
        assert again[f"{elem}-failure"]["visible"] and "GPU 显存不足" in again[f"{elem}-failure"]["value"], again[f"{elem}-failure"]
    page.kept.clear()
    assert page.switch("en")["ev-failure"] == gr.skip()


def test_where_a_finished_export_went_is_said_again(page):
    from core import jobs as J
    from core.rundir import RunDir, write_json
    store = page.gui.store
    run_dir = page.gui.ws.runs / "x-done"
    run_dir.mkdir(parents=True)
    write_json(RunDir(run_dir).result, dict(export_dir="/w/exports/x", total_bytes=2048,
                                            smoke_test=dict(status="ok", reply="hi")))
    job = store.create(kind="merge", name="x", run_dir=str(run_dir))
    assert store.transition(job.id, J.STARTING) and store.transition(job.id, J.SUCCEEDED)
    page.kept[page.component("ex-job")._id] = job.id
    zh = page.switch("zh-CN")["ex-result"]
    assert zh.startswith(f"**{tr('ex.done', 'zh-CN')}** `/w/exports/x`") and tr("ex.smoke", "zh-CN") in zh, zh
    assert page.switch("en")["ex-failure"]["visible"] is False


def test_the_length_summary_is_said_again(page, uploads):
    src = uploads / "furnaces.jsonl"
    src.write_bytes((REPO / "presets/templates/data/demo.jsonl").read_bytes())
    ds = D.import_file(page.gui.ws, src, "furnaces.jsonl", origin="shell")["id"]
    said = page.call(ds, "", 128, False, "auto", 1, "en", handler=dataset_lengths.insight)["ds-lengths"]
    assert said.startswith(f"{tr('ds.tokens', 'en')}: min ") and "(128): **0**" in said
    ja = page.switch_all("ja")["ds-lengths"]
    assert ja.startswith(f"{tr('ds.tokens', 'ja')}: {tr('ds.min', 'ja')} ") and tr("ds.over_max", "ja") in ja and "(128): **0**" in ja


def test_a_refused_upload_stays_after_a_switch_in_the_new_language(page, uploads):
    """The refusal is what the summary shows, not the dataset still selected before it; a check forgets it."""
    good = uploads / "furnaces.jsonl"
    good.write_bytes((REPO / "presets/templates/data/demo.jsonl").read_bytes())
    page.call(str(good), "auto", "", "en", api_name="upload_dataset")
    bad = uploads / "photo.jsonl"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    with pytest.raises(InputError) as refused:
        D.import_file(page.gui.ws, bad, "photo.jsonl", origin="shell")
    words = lambda lang: dataset_tab.refusal(refused.value, lang)
    assert page.call(str(bad), "auto", "", "en", api_name="upload_dataset")["ds-summary"] == words("en")
    again = page.switch_all("zh-CN")
    assert again["ds-summary"] == words("zh-CN") != words("en") and "furnaces" not in again["ds-summary"]
    assert again["ds-problems"].empty and list(again["ds-problems"].columns)[0] == tr("ds.col.line", "zh-CN")
    page.call(page.kept[page.component("ds-id")._id], "", "auto", "", "en", api_name="check_dataset")
    assert "**furnaces.jsonl**" in page.switch_all("ko")["ds-summary"]


def test_the_comparison_of_two_versions_is_drawn_again(page, uploads):
    from core.data.diff import diff_versions
    from tests.data.review_data import make_rows, write_rows
    rows = make_rows(12)
    ds = D.import_file(page.gui.ws, write_rows(uploads / "d.jsonl", rows + rows[:3]), "d.jsonl", origin="shell")["id"]
    assert D.apply_op(page.gui.ws, ds, "dedupe", origin="shell")["changed"]
    d = diff_versions(page.gui.ws, ds, 0, 1)
    head = lambda lang: tr("rv.diff.summary", lang).format(a=d["added"], r=d["removed"], c=d["changed"], mk=d["marks_changed"])
    diff = page.call(ds, "0", "1", "en", api_name="review_diff")["rv-diff"]
    assert head("en") in diff and f"{tr('rv.version', 'en')} 1:" in diff
    es = page.switch_all("es")["rv-diff"]
    assert head("es") in es and f"{tr('rv.version', 'es')} 1:" in es and head("en") not in es, es
    D.undo(page.gui.ws, ds)  # version 1 is another file now: the comparison shown is not redrawn with it
    D.apply_op(page.gui.ws, ds, "edit", origin="shell", row=1, record={"messages": [{"role": "user", "content": "hi"}]})
    assert "rv-diff" not in page.switch_all("ko")
    page.kept[page.component("rv-compared")._id] = "[" * 100_000  # anything may arrive from the page
    assert "rv-diff" not in page.switch_all("en")


def test_the_note_in_the_command_box_is_said_again(page):
    from core.presets import compose
    from webui import fields
    demo = dict(zip(fields.NAMES, fields.config_values(compose("demo"), fields.NAMES)))
    note = page.call("en", ["cpu"], 1, json.dumps({**demo, "lora_rank": 0}), api_name="show_command")["hp-command"]
    assert note.startswith(f"# {tr('hp.fix_first', 'en')}\n# ")
    zh = page.switch_all("zh-CN")["hp-command"]
    assert zh.startswith(f"# {tr('hp.fix_first', 'zh-CN')}\n# ") and CJK.search(zh.split("\n")[1]), zh
    line = page.call("en", ["cpu"], 1, json.dumps(demo), api_name="show_command")["hp-command"]
    assert line.startswith("python app.py train ") and "hp-command" not in page.switch_all("ja")  # no words: left as it is


def test_a_refused_settings_box_is_said_in_the_pages_language(page):
    """Every event reading the settings box (a direct HTTP call may send anything) refused a broken
    one in English whatever the page's language: now in the language the event was given."""
    lang = page.component("language")
    box = page.component("settings-json")
    routes = [f for f in page.blocks.fns.values() if f.fn and f.inputs and f.inputs[-1] is box]
    assert len(routes) >= 7, [f.api_name for f in routes]  # templates, check, save, load, command, start ×2
    for f in routes:
        args = ["ja" if c is lang else c.value for c in f.inputs[:-1]]
        with pytest.raises(gr.Error) as e:
            f.fn(*args, '{"lora_rnak": 8}')
        said = e.value.message
        words = [tr("config.unknown", "ja"), tr("page.unknown.hint", "ja")]
        assert said.startswith("lora_rnak") and all(w in said for w in words), (f.api_name, said)
        assert e.value.title == tr("error.input", "ja"), (f.api_name, e.value.title)


def test_the_dataset_pickers_labels_follow_the_language_and_what_it_shows_stays(page, uploads):
    """The picker named versions in English ("original", "cleaned ×1") in every language, also after a
    switch. Its values are the datasets' ids: a switch changes the labels only, so the dataset shown
    stays shown (also after a template emptied the selected id)."""
    src = uploads / "furnaces.jsonl"
    src.write_bytes((REPO / "presets/templates/data/demo.jsonl").read_bytes())
    out = page.call(str(src), "auto", "", "ja", api_name="upload_dataset")
    ds = out["ds-id"]
    assert out["ds-picker"]["value"] == ds
    assert out["ds-picker"]["choices"] == [(f"furnaces.jsonl · {tr('ds.original', 'ja')} · {ds}", ds)]
    D.apply_op(page.gui.ws, ds, "edit", origin="shell", row=1, record={"messages": [{"role": "user", "content": "hi"}]})
    page.kept[page.component("ds-id")._id] = ""  # a template empties the id; the picker still shows the dataset
    picker = page.switch_all("ko")["ds-picker"]
    assert picker["choices"] == [(f"furnaces.jsonl · {tr('ds.cleaned', 'ko')} ×1 · {ds}", ds)] and "value" not in picker


def shown_by_page(page, elem_id):
    """What the page sends back for a highlighted text it shows: Gradio's own round trip of the value."""
    c = page.component(elem_id)
    value = page.kept[c._id]
    value = value["value"] if isinstance(value, dict) else value  # an update, or what the page sent before
    return value if value and isinstance(value[0], dict) else c.preprocess(c.postprocess(value))


def test_the_rendered_examples_labels_follow_a_switch(page, uploads):
    """The example as the model sees it labels what is learned and what is cut off, in the language it
    was measured in; a switch kept those words (the example is not measured again): now relabelled."""
    from tests.data.helpers import write_jsonl
    src = uploads / "furnaces.jsonl"
    src.write_bytes((REPO / "presets/templates/data/demo.jsonl").read_bytes())
    ds = D.import_file(page.gui.ws, src, "furnaces.jsonl", origin="shell")["id"]
    page.call(ds, "builtin:danlu-tiny", 20, False, "auto", 1, "en", handler=dataset_lengths.insight)
    labels = lambda segs: {s["class_or_confidence"] for s in segs} - {None}
    assert labels(shown_by_page(page, "ds-rendered")) == {tr("ds.trained", "en"), tr("ds.truncated", "en")}
    for code in ("ja", "ko"):
        page.kept[page.component("ds-rendered")._id] = shown_by_page(page, "ds-rendered")
        again = page.switch_all(code)
        assert labels(shown_by_page(page, "ds-rendered")) == {tr("ds.trained", code), tr("ds.truncated", code)}, again
        assert all(skipped(again.get(p, gr.skip())) for p in ("ds-pair-prompt", "ds-pair-chosen", "ds-pair-rejected"))
    pairs = [{"prompt": f"Reset router {i}?", "chosen": "Hold the button.", "rejected": "No."} for i in range(3)]
    ds = D.import_file(page.gui.ws, write_jsonl(uploads / "pairs.jsonl", pairs), "pairs.jsonl", origin="shell")["id"]
    page.call(ds, "builtin:danlu-tiny", 128, False, "auto", 1, "es", handler=dataset_lengths.insight)
    for p in ("ds-rendered", "ds-pair-prompt", "ds-pair-chosen", "ds-pair-rejected"):
        page.kept[page.component(p)._id] = shown_by_page(page, p)
    again = page.switch_all("zh-CN")
    assert labels(shown_by_page(page, "ds-pair-chosen")) == {tr("ds.trained", "zh-CN")} and "ds-rendered" not in again


def test_a_switch_before_check_leaves_the_summary_as_it_was(page, uploads):
    """A template fills the dataset box with its sample file and empties the selected id; a switch before
    its sample file's check answered (it follows the template's answer) checked nothing and wrote "upload a
    file first" where the summary was empty. What a check of nothing says is said again; a summary shown
    until that check answers stays, its table's rows too."""
    page.call("en", "{}", api_name="use_template_demo")
    again = page.switch_all("zh-CN")
    assert "ds-summary" not in again and list(again["ds-problems"].columns)[0] == tr("ds.col.line", "zh-CN")
    assert page.call("", "", "auto", "", "en", api_name="check_dataset")["ds-summary"] == tr("ds.none", "en")
    assert page.switch_all("ja")["ds-summary"] == tr("ds.none", "ja")
    src = uploads / "furnaces.jsonl"
    src.write_text((REPO / "presets/templates/data/demo.jsonl").read_text() + "{not json\n")
    shown = page.call(str(src), "auto", "", "en", api_name="upload_dataset")["ds-summary"]
    page.call("en", "{}", api_name="use_template_demo")
    again = page.switch_all("ko")
    assert "ds-summary" not in again and page.kept[page.component("ds-summary")._id] == shown
    assert len(again["ds-problems"]) == 1 and list(again["ds-problems"].columns)[0] == tr("ds.col.line", "ko")


def test_a_file_the_upload_does_not_take_is_refused_in_the_pages_language(page, uploads):
    """Gradio refused a file named otherwise than the upload's types with its own notice, in English on
    every page: the upload lets any file through and the page refuses it in words (the same types),
    said again after a switch; nothing is imported."""
    from gradio.data_classes import FileData
    from core.data.store import UPLOAD_SUFFIXES
    from core.messages import Msg
    notes = uploads / "notes.pdf"
    notes.write_bytes(b"%PDF-1.4\n" + bytes(range(256)))
    rows = uploads / "rows.txt"  # data, named otherwise: refused as before
    rows.write_bytes((REPO / "presets/templates/data/demo.jsonl").read_bytes())
    words = lambda lang: i18n.say(Msg("upload.bad_type", types=", ".join(UPLOAD_SUFFIXES)), lang)
    for path in (notes, rows):
        assert page.component("ds-upload").preprocess(FileData(path=str(path), orig_name=path.name)) == str(path)
        said = page.call(str(path), "auto", "", "ja", api_name="upload_dataset")["ds-summary"]
        assert words("ja") in said and path.name in said
        assert words("es") in page.switch_all("es")["ds-summary"]
    assert D.list_datasets(page.gui.ws) == []
    capitals = uploads / "ROWS.JSONL"
    capitals.write_bytes(rows.read_bytes())
    assert "**124**" in page.call(str(capitals), "auto", "", "en", api_name="upload_dataset")["ds-summary"]


def test_a_template_shows_its_sample_data_on_the_dataset_tab(page, uploads):
    """A template empties the selected dataset and fills the dataset box with its sample file, which waited
    for Check: the Dataset tab went on showing the summary, problems, counts, rows, lengths and cleaning
    note of a dataset no longer selected. Its sample file is checked at once now, as Check would (rows,
    picker and lengths follow), and a switch checks it again in the new language."""
    row = lambda i: json.dumps({"messages": [{"role": "user", "content": f"zebra {i}?"}, {"role": "assistant", "content": "ok"}]})
    src = uploads / "zebras.jsonl"
    src.write_text("\n".join([row(1), row(1), row(2), "{not json"]) + "\n")
    ds = page.call_all(str(src), "auto", "", "en", api_name="upload_dataset")["ds-id"]
    page.call_all(ds, "builtin:danlu-tiny", 128, "auto", "en", api_name="clean_dedupe")  # refused: a broken row
    kept = lambda elem_id: page.kept[page.component(elem_id)._id]
    assert "**zebras.jsonl**" in kept("ds-summary") and len(kept("ds-problems")) == 3 and kept("ds-counts")
    assert "zebra" in kept("ds-grid").to_string() and kept("ds-clean-message").startswith("⚠ **zebras.jsonl")
    assert kept("ds-histogram")["value"]["rows"].sum() == 3
    page.call_all("en", json.dumps({"dataset": kept("cfg-dataset")}), api_name="use_template_demo")
    assert kept("ds-summary").startswith("✓ **demo.jsonl**") and "**124**" in kept("ds-summary")
    sample = kept("ds-id")
    assert sample != ds and D.get_dataset(page.gui.ws, sample)["display_name"] == "demo.jsonl"
    assert kept("ds-problems").empty and kept("ds-counts") == "" and kept("ds-picker")["value"] == sample
    assert len(kept("ds-grid")) == 50 and "zebra" not in kept("ds-grid").to_string()
    assert kept("ds-histogram")["value"]["rows"].sum() == 124 and kept("ds-clean-message") == ""
    assert kept("cfg-dataset") == str(D.training_path(page.gui.ws, sample))
    again = page.switch_all("ja")
    assert again["ds-summary"].startswith("✓ **demo.jsonl**") and tr("ds.rows", "ja") in again["ds-summary"]
    assert "ds-clean-message" not in again  # its note of the dataset before does not come back
