"""File boxes and click handlers, sent straight to the HTTP API what the page never sends: a value that is no
uploaded file, a file outside Gradio's upload folder, a click event with no click. Gradio failed before the
handler ran (ValidationError, InvalidPathError, TypeError building gr.SelectData): HTTP 500 with a bare
"Error". Now refused in the page's words, naming the box (webui.sent_events). The walk over every file box
and click event of the live app is tests/security/test_http.py."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pandas as pd
import pytest
from gradio.events import EventData
from gradio.state_holder import SessionState

from webui import choices
from webui.i18n import LANGUAGES, L, tr
from webui.tabs import train_tab

META = {"_type": "gradio.FileData"}


def page():
    """The language picker, a file box and an upload button whose events echo the path they get, and a
    table whose click handler takes gr.SelectData."""
    with gr.Blocks() as blocks:
        lang = gr.Radio(choices=LANGUAGES, value="en", label=L("app.language"))
        upload = gr.File(label=L("ds.upload"))
        button = gr.UploadButton(L("hp.load"))
        table = gr.Dataframe(value=pd.DataFrame({"job": ["job-1"]}), label=L("train.jobs"))
        out = gr.Textbox()
        upload.upload(lambda path, code: f"{code}:{path}", [upload, lang], [out])
        button.upload(lambda path: str(path), [button], [out])

        def clicked(evt: gr.SelectData):
            return str(evt.row_value)
        table.select(clicked, None, [out])
    choices.refuse_in_words(blocks, lang)
    return blocks, *blocks.fns.values()


def run(blocks, fn, data, state, event_data=None):
    # in a thread of its own: the browser tests' Playwright may keep an event loop running in this one
    call = blocks.process_api(fn, data, state=state, event_data=event_data)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, call).result()["data"][0]


def refused(*args, **kwargs) -> str:
    with pytest.raises(gr.Error) as e:
        run(*args, **kwargs)
    assert not e.value.print_exception  # the page's own refusal: no traceback in the server's log
    return e.value.message


def test_a_file_box_takes_only_a_file_uploaded_to_the_page(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    sent = tmp_path / "uploads" / "abc" / "d.jsonl"
    sent.parent.mkdir(parents=True)
    sent.write_text("{}\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    blocks, dropped, loaded, _ = page()
    state = SessionState(blocks)
    not_a_file = [5, "hello", str(outside), [1, 2], True, {"path": str(sent)}]  # the last: no "meta"
    not_uploaded = [str(outside), str(sent.parent / ".." / ".." / "secret.txt"), str(tmp_path / "uploads"),
                    str(sent.parent / "gone.jsonl"), "http://127.0.0.1:9/d.jsonl", "d\x00.jsonl"]
    for value in not_a_file + [{"path": p, "meta": META} for p in not_uploaded]:
        said = refused(blocks, dropped, [value, "ja"], state)
        assert said.startswith(tr("ds.upload", "ja")) and "このページにアップロードされたファイルではありません" in said, (value, said)
        said = refused(blocks, loaded, [value], SessionState(blocks))  # no language sent yet: English
        assert said.startswith(tr("hp.load", "en") + ": ") and "is not a file uploaded to this page" in said, (value, said)
        assert "/gradio_api/upload" in said
    assert "secret" not in run(blocks, dropped, [None, "en"], state)  # no file chosen: the handler says so
    echoed = run(blocks, dropped, [{"path": str(sent), "meta": META, "orig_name": "d.jsonl"}, "es-ES"], state)
    assert echoed.startswith("es:") and echoed.endswith("d.jsonl")


def test_a_click_handler_called_without_a_click_is_refused_in_words():
    blocks, _, _, clicked = page()
    state = SessionState(blocks)
    for data in (None, 5, "x", {"index": [0, 0]}, [1]):
        said = refused(blocks, clicked, [], state, event_data=None if data is None else EventData(None, data))
        assert said == tr("train.jobs", "en") + ": the call carries no click — click a row of the table " \
                                                "(a direct call: send the click as event_data, with its index and value)", said
    click = {"index": [0, 0], "value": "job-1", "row_value": ["job-1"]}
    assert run(blocks, clicked, [], state, event_data=EventData(None, click)) == "['job-1']"


@pytest.mark.parametrize("row", [5, "job-1", [5], [], None, {"0": "job-1"}])
def test_a_click_in_the_job_table_that_names_no_job_picks_nothing(row):
    """`row_value` 5 raised TypeError (HTTP 500); a string picked its first letter as the job."""
    evt = gr.SelectData(None, {"index": [0, 0], "value": "x", "row_value": row})
    assert train_tab.select_row(evt) == gr.skip()
    assert train_tab.select_row(gr.SelectData(None, {"index": [0, 0], "value": "x", "row_value": ["job-1", "a"]})) == "job-1"


def test_a_file_described_in_a_box_that_takes_no_file_is_refused_in_words():
    """{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}} sent to a text box (a direct call; found by
    the lead's probe after the merges): Gradio moves every file it finds in an event's values to its cache and
    failed there (InvalidPathError), HTTP 500 with no words. Anywhere in the value, however deep."""
    with gr.Blocks() as blocks:
        lang = gr.Radio(choices=LANGUAGES, value="en", label=L("app.language"))
        box = gr.Textbox(label=L("chat.system"))
        out = gr.Textbox()
        box.submit(lambda text, code: f"{code}:{text}", [box, lang], [out])
    choices.refuse_in_words(blocks, lang)
    fn = next(iter(blocks.fns.values()))
    file = {"path": "/etc/passwd", "meta": META}
    for value in (file, [file], {"a": [1, {"b": file}]}, [[[[file]]]]):
        said = refused(blocks, fn, [value, "ko"], SessionState(blocks))
        assert said.startswith(tr("chat.system", "ko")) and "파일을 받지 않는 상자에 파일이 보내졌습니다(/etc/passwd)" in said, said
    assert run(blocks, fn, ["plain text", "en"], SessionState(blocks)) == "en:plain text"
    assert run(blocks, fn, [{"path": "/etc/passwd"}, "en"], SessionState(blocks)) == "en:{'path': '/etc/passwd'}"  # no meta: text
