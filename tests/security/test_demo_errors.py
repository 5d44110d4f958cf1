"""The shared chat demo, called over its HTTP API with hostile values, answers only Danlu's worded
errors: never Gradio's own validation text (pydantic's, which quotes the value), its message about
missing inputs, or an exception's internals (found by probing a live demo: it ran with show_error=True).

The demo here is webui.demo_app's own app and launch, in this process, with a stand-in engine (no model)."""
from __future__ import annotations

import json
from contextlib import contextmanager

import httpx
import pytest

from core.messages import Msg
from tests.conftest import free_port

SECRET = "secret-internal-detail /home/someone/.cache"
# what must never reach a caller: Gradio's or pydantic's own words, Python's, the stand-in's secret
LEAKS = ("validation error", "input_value", "pydantic", "Wanted inputs", "Traceback", "RuntimeError", "didn't receive",
         SECRET, "Input should be")


class Engine:
    """Answers "hello"; a message "boom" makes it fail as a bug would (an exception that is not Danlu's)."""

    def stream(self, session_id, messages, **settings):
        from core.chat import sampling
        sampling(temperature=settings["temperature"], top_p=0.9, max_new_tokens=settings["max_new_tokens"],
                 repetition_penalty=1.1)  # core's check of the sliders, as the real engine does
        if messages[-1]["content"] == "boom":
            raise RuntimeError(SECRET)
        yield "hello"

    def close(self):
        pass


@contextmanager
def live_demo(lang: str = "en"):
    from webui import demo_app
    app = demo_app.build_demo(Engine(), "session", "Furnace bot", lang=lang)
    demo_app.launch(app, "127.0.0.1", free_port(), None, lang)
    try:
        yield app.local_url.rstrip("/")
    finally:
        app.close()


def queued(base: str, data) -> tuple[int, str]:
    """POST /gradio_api/call/chat, then its event stream: (status, the error's words or the last data)."""
    r = httpx.post(f"{base}/gradio_api/call/chat", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return r.status_code, r.json().get("error") or r.text
    events = httpx.get(f"{base}/gradio_api/call/chat/{r.json()['event_id']}", timeout=30).text
    last = [line[len("data: "):] for line in events.splitlines() if line.startswith("data: ")][-1]
    if "event: error" in events:
        return 500, json.loads(last)["error"]
    return 200, last


def direct(base: str, body: bytes) -> tuple[int, str]:
    """POST /gradio_api/run/chat with a raw body: (status, its error's words or the whole reply)."""
    r = httpx.post(f"{base}/gradio_api/run/chat", content=body, headers={"Content-Type": "application/json"}, timeout=30)
    try:
        return r.status_code, r.json().get("error") or r.text
    except ValueError:
        return r.status_code, r.text


@pytest.mark.parametrize("data", [
    ["hi", "not a conversation", 0.7, 16],
    ["hi", [{"role": 5}], 0.7, 16],
    ["hi", [{"role": "tool", "content": "a"}], 0.7, 16],
    ["hi", [[1, 2], {"x": None}], 0.7, 16],
    [1],                                   # too few values
    ["boom", [], 0.7, 16],                 # the demo's own code fails (not a Danlu error)
], ids=["history-text", "role-number", "role-unknown", "history-junk", "one-value", "internal-error"])
def test_values_the_demo_cannot_use_answer_one_worded_sentence(data):
    with live_demo() as base:
        status, said = queued(base, data)
        assert status == 500 and said == str(Msg("demo.failed")), said[:300]
        if data[0] != "boom":  # the direct route answers a generator's first step only (before it fails)
            status, said = direct(base, json.dumps({"data": data}).encode())
            assert status == 500 and said == str(Msg("demo.failed")), (status, said[:300])


def test_danlus_own_words_pass_and_a_huge_message_or_a_body_of_another_shape_is_said_in_words():
    with live_demo() as base:
        assert queued(base, ["hi", [], 0.7, 16])[0] == 200  # the demo answers a good call
        status, said = queued(base, ["hi", [], "hot", 16])
        assert status == 500 and "temperature" in said and "between 0 and 5" in said  # core's own check, as it is
        status, said = queued(base, ["x" * 300_000, [], 0.7, 16])
        assert said == str(Msg("demo.too_long", n=300_000, limit=8000)), said[:300]
        for body in (b'{"data": "not a list"}', b'{"data": [1, 2], "fn_index": "x"}', b"{not json", b"[]"):
            status, said = direct(base, body)
            assert status == 422 and said == str(Msg("demo.unreadable")), (body, status, said)
        for data in ("a" * 100_000, {"nested": [[[[]]]]}, 10**30):
            status, said = queued(base, data)
            assert status == 422 and said == str(Msg("demo.unreadable")), (status, said[:300])
        for data in (["hi", "not a conversation", 0.7, 16], ["boom", [], 0.7, 16], "x"):
            _, said = queued(base, data)
            assert not any(leak in said for leak in LEAKS), said[:300]


def test_a_demo_shared_from_a_japanese_page_speaks_japanese():
    """The demo's page and its words were English whatever the page that shared it spoke."""
    from webui.i18n import say, tr
    with live_demo("ja") as base:
        props = [c.get("props", {}) for c in httpx.get(f"{base}/config", timeout=30).json()["components"]]
        words = {str(p.get(k)) for p in props for k in ("label", "value", "placeholder", "info")}
        for key in ("chat.send", "chat.clear", "chat.message", "chat.message_placeholder", "chat.sampling",
                    "chat.temperature", "chat.temperature_help", "chat.max_new_tokens", "chat.answers"):
            assert tr(key, "ja") in words, (key, words)
        assert not words & {"Send", "Clear", "Chat", "Message", "Temperature"}, words
        assert queued(base, ["boom", [], 0.7, 16]) == (500, say(Msg("demo.failed"), "ja"))
        assert queued(base, ["x" * 9000, [], 0.7, 16])[1] == say(Msg("demo.too_long", n=9000, limit=8000), "ja")
        assert direct(base, b"{not json") == (422, say(Msg("demo.unreadable"), "ja"))

