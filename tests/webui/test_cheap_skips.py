"""webui.serving.cheap_skips: skipped outputs are answered without Gradio's per-output rebuild, and
every answer is the one Gradio itself gives."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import pandas as pd
from gradio.state_holder import SessionState

from webui import serving


def _blocks():
    with gr.Blocks() as demo:
        outs = [gr.Markdown("a"), gr.Textbox(label="log"), gr.LinePlot(label="plot", x="step", y="loss"),
                gr.Button("Stop"), gr.State("kept"), gr.Dropdown(label="job", choices=["x"])]
        gr.Button("go").click(lambda: None, None, outs)
    return demo, demo.default_config.fns[0]


PLOT = pd.DataFrame({"step": [1, 2], "loss": [2.0, 1.5]})
CASES = [
    [gr.skip()] * 6,
    ["**Running**", gr.skip(), gr.skip(), gr.update(interactive=False), gr.skip(), gr.skip()],
    [gr.skip(), "line 1\nline 2", PLOT, gr.skip(), "new state", gr.update(choices=["x", "y"], value="y")],
    ["only one", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()],
]


def _run(demo, fn, predictions, cheap):
    if cheap:
        serving.cheap_skips(demo)
    state = SessionState(demo)
    # in a thread of its own: an earlier test (Playwright) may leave an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(asyncio.run, demo.postprocess_data(fn, list(predictions), state)).result()
    return out, state


def test_answers_match_gradios_own():
    for case in CASES:
        plain_demo, plain_fn = _blocks()
        cheap_demo, cheap_fn = _blocks()
        expected, plain_state = _run(plain_demo, plain_fn, [dict(v) if isinstance(v, dict) else v for v in case], False)
        got, cheap_state = _run(cheap_demo, cheap_fn, case, True)
        assert got == expected, case
        # the State output went through Gradio's path in both: its value (or its skip) is the same
        sid_plain, sid_cheap = plain_fn.outputs[4]._id, cheap_fn.outputs[4]._id
        assert (sid_plain in plain_state) == (sid_cheap in cheap_state)
        if sid_plain in plain_state:
            assert plain_state[sid_plain] == cheap_state[sid_cheap]


def test_skips_build_no_component(monkeypatch):
    """Gradio rebuilds a component for every skipped output; the cheap path builds none."""
    built = []
    original = gr.Markdown.__init__

    def counting(self, *a, **k):
        built.append(1)
        original(self, *a, **k)
    (plain, plain_fn), (cheap, cheap_fn) = _blocks(), _blocks()
    monkeypatch.setattr(gr.Markdown, "__init__", counting)
    _run(plain, plain_fn, [gr.skip()] * 6, False)
    assert built, "Gradio's own path rebuilds the skipped Markdown (else this test proves nothing)"
    built.clear()
    _run(cheap, cheap_fn, [gr.skip()] * 6, True)
    assert built == []
