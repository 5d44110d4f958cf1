"""The Chat tab's answer bubble says what is happening until the words come: loading the model, then
writing the answer; the words replace that, and an answer that ends without words says so. No model
here: a stand-in engine hands over the pieces a test chooses (no words of a real model, no timing)."""
from __future__ import annotations

import copy
from types import SimpleNamespace

from core.chat import ChatError
from core.messages import Msg
from webui.i18n import say, tr
from webui.tabs import chat_tab

SAMPLING = [0.7, 0.9, 16, 1.1]
ASKED = [{"role": "user", "content": "hi"}]


class Engine:
    """Loads at once; `stream` yields `pieces`, noting what the page showed when the model began to write."""

    def __init__(self, pieces=(), fail=None):
        self.pieces, self.fail = list(pieces), fail
        self.shown: list = []          # every state the page was sent (the test fills it)
        self.when_writing: list = []   # what the page showed when each answer's first piece was asked for

    def load(self, model, adapter=None, **_):
        return f"{model}+{adapter}"

    def stream(self, sid, history, **settings):
        self.when_writing.append(self.shown[-1] if self.shown else None)
        yield from self.pieces
        if self.fail is not None:
            raise self.fail


def talk(engine: Engine, lang="en", compare=False, adapter=None) -> list:
    """The answer handler run to its end: the tuned conversation's last bubble, as the page saw it each time."""
    gui = SimpleNamespace(chat_engine=lambda: engine)
    sessions = chat_tab.Sessions(gui)
    for tuned, base, _note in chat_tab.answer(gui, sessions, lang, "builtin:danlu-tiny", adapter, compare, "", *SAMPLING,
                                              list(ASKED), list(ASKED) if compare else []):
        engine.shown.append(copy.deepcopy((tuned, base)))
    return [tuned[-1]["content"] for tuned, _ in engine.shown]


def test_loading_gives_way_to_writing_before_the_first_word():
    """The bubble said "loading the model" until the first piece of the answer arrived, long after the
    model had loaded (the model reads the whole conversation first)."""
    engine = Engine(["Hel", "lo"])
    bubbles = talk(engine)
    loading, writing = tr("chat.loading", "en"), tr("chat.writing", "en")
    assert bubbles[0] == loading
    [(tuned, _)] = engine.when_writing  # the model has loaded and is about to write: the page says so
    assert tuned[-1]["content"] == writing
    assert bubbles[-1] == "Hello" and loading not in bubbles[1:] and writing not in bubbles[bubbles.index("Hel"):]


def test_a_loaded_model_says_it_writes_and_an_answer_without_words_says_so():
    """The second message (the model already loaded) shows 'writing' until its words; an answer of no
    words replaces it at the end (it stayed empty, or would have said 'writing' for good)."""
    engine = Engine([])
    gui = SimpleNamespace(chat_engine=lambda: engine)
    sessions = chat_tab.Sessions(gui)
    sessions.get("builtin:danlu-tiny", None)
    shown = []
    for tuned, _base, _note in chat_tab.answer(gui, sessions, "ja", "builtin:danlu-tiny", None, False, "", *SAMPLING,
                                               list(ASKED), []):
        shown.append(tuned[-1]["content"])
    assert shown[0] == tr("chat.writing", "ja") and tr("chat.loading", "ja") not in shown
    assert shown[-1] == tr("chat.empty_answer", "ja")


def test_compare_mode_says_it_for_both_answers_and_a_failure_replaces_the_status():
    engine = Engine(["a"])
    talk(engine, compare=True, adapter="run-1")
    tuned, base = engine.shown[-1]
    assert tuned[-1]["content"] == "a" and base[-1]["content"] == "a"
    _, base_when_writing = engine.when_writing[1]  # the base model's answer, after the tuned one
    assert base_when_writing[-1]["content"] == tr("chat.writing", "en")
    failing = Engine(["par"], fail=ChatError(Msg("chat.died_answering")))
    bubbles = talk(failing)
    assert bubbles[-1].startswith("⚠") and "stopped while answering" in bubbles[-1], bubbles


def test_the_chat_tab_starts_its_demo_in_the_pages_language(gui, monkeypatch):
    from core import demos
    from webui.tabs import chat_share
    asked = {}
    monkeypatch.setattr(demos, "start_demo", lambda *a, **kw: asked.update(kw) or dict(url="http://127.0.0.1:1"))
    chat_share.start_demo(gui, "ko", "builtin:danlu-tiny", None, "", "127.0.0.1", None, "", "", False)
    assert asked["lang"] == "ko"
    assert demos.demo_command("m", None, "127.0.0.1", None, False, lang="ko")[3:7] == ["m", "--host", "127.0.0.1", "--lang"]


def test_a_long_conversation_keeps_its_newest_messages_and_says_older_ones_went():
    """The conversation the page sends back with every message grew without bound (a long chat carried all
    of it each time, twice in compare mode): it keeps its newest messages, starting with a user message,
    and the note under the chat says how many older ones were taken out of view."""
    sent = []

    class Recording(Engine):
        def stream(self, sid, history, **settings):
            sent.append(history)
            yield "ok"
    gui = SimpleNamespace(chat_engine=lambda: Recording())
    turns = [{"role": ("user", "assistant")[i % 2], "content": f"m{i}"} for i in range(301)]  # ends with a user message
    *_, (tuned, base, note) = chat_tab.answer(gui, chat_tab.Sessions(gui), "ja", "builtin:danlu-tiny", "run-1", True, "",
                                              *SAMPLING, copy.deepcopy(turns), copy.deepcopy(turns))
    for conv in (tuned, base):
        assert len(conv) <= chat_tab.KEEP_MESSAGES and conv[0] == {"role": "user", "content": "m202"}, conv[:2]
        assert conv[-2]["content"] == "m300" and conv[-1] == {"role": "assistant", "content": "ok"}
    assert sent[0] == tuned[:-1]  # the model is asked with what the page shows
    assert note == say(Msg("chat.older_dropped", n=202, kept=chat_tab.KEEP_MESSAGES, chars=chat_tab.KEEP_CHARS), "ja")
    assert "202" in note.texts["en"] and "taken out of view" in note.texts["en"]
    # characters count too; the newest message stays however long it is
    long = [{"role": "user", "content": "x" * 200_000}, {"role": "assistant", "content": "y"}]
    *_, (tuned, _, note) = chat_tab.answer(gui, chat_tab.Sessions(gui), "en", "builtin:danlu-tiny", None, False, "",
                                           *SAMPLING, long * 2 + [{"role": "user", "content": "z" * 400_000}], [])
    assert [m["content"][:1] for m in tuned] == ["z", "o"] and "4 older messages were taken out of view" in note
    *_, (tuned, _, note) = chat_tab.answer(gui, chat_tab.Sessions(gui), "en", "builtin:danlu-tiny", None, False, "",
                                           *SAMPLING, long + ASKED, [])
    assert len(tuned) == 4 and note == ""  # a short conversation: all of it, no note
