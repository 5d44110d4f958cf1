"""Pickers that take only their choices, sent straight to the HTTP API a value they do not take: refused in the
page's words, naming the box, against this session's choices (webui.choices). Gradio answered in its own English,
'Value: x is not in the list of choices: [...]' (HTTP 500 and a traceback). The walk over every event of the
live app is tests/security/test_http.py."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from webui import choices
from webui.i18n import LANGUAGES, L, tr


def page():
    """A language picker, a dataset picker whose choices an event widens, a group, and events reading them."""
    with gr.Blocks() as blocks:
        lang = gr.Radio(choices=LANGUAGES, value="en", label=L("app.language"))
        pick = gr.Dropdown(choices=["a"], value="a", label=L("ds.picker"))
        group = gr.CheckboxGroup(choices=["x", "y"], value=["x"], label=L("ex.formats"))
        out = gr.Textbox()
        gr.Button().click(lambda: gr.update(choices=["a", "b"]), None, [pick])
        pick.change(lambda p: p, [pick], [out])  # no language among its inputs
        lang.change(lambda code, p, g: f"{code}:{p}:{g}", [lang, pick, group], [out])
    choices.refuse_in_words(blocks, lang)
    return blocks, *blocks.fns.values()  # widen, alone, spoken


def refused(run, *args) -> str:
    with pytest.raises(gr.Error) as e:
        run(*args)
    assert not e.value.print_exception  # the page's own refusal: no traceback in the server's log
    return e.value.message


def test_a_picker_is_checked_against_this_sessions_choices_in_the_pages_language():
    blocks, widen, alone, spoken = page()
    state = SessionState(blocks)

    def run(fn, data, session=state):
        # in a thread of its own: in the whole suite the browser tests' Playwright keeps an event loop
        # running in this one, where asyncio.run refuses to start another
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, blocks.process_api(fn, data, state=session)).result()["data"][0]
    # no language sent yet: English; the box named as the page labels it, the value quoted
    assert refused(run, alone, ["b"]) == 'Your datasets: "b" is not one of its choices — pick one from its list'
    assert run(spoken, ["ja", "a", ["y"]]) == "ja:a:['y']"
    said = refused(run, alone, ["b"])  # this session's language
    assert said == tr("ds.picker", "ja") + "：\"b\" は選択肢にありません — 一覧から選んでください"
    run(widen, [])  # Gradio rebuilds the picker with its new choices, for this session alone
    assert run(alone, ["b"]) == "b"
    assert "\"c\"" in refused(run, alone, ["c"])
    assert "\"b\"" in refused(run, alone, ["b"], SessionState(blocks))  # another session keeps the first choices
    assert "形式" in refused(run, spoken, ["ja", "a", ["x", "z"]]) and "\"z\"" in refused(run, spoken, ["ja", "a", ["z"]])
    assert "[" in refused(run, spoken, ["ja", ["a"], ["x"]])  # a list to a single picker
    # the language as every handler reads it; a group sent nothing has nothing checked
    assert run(spoken, ["es-ES", "a", None]) == "es:a:[]"
    assert run(spoken, ["fr", "a", ["x"]]) == "en:a:['x']" and run(spoken, [10**30, None, []]) == "None:None:[]"
