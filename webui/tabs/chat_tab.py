"""Chat tab: talk to a base model with an optional adapter (or a merged export), with a system prompt
and sampling settings; streaming answers; a compare mode (base and fine-tuned side by side); and
"Share a demo", the separate chat-only app of core.demos (its panel: webui/tabs/chat_share.py).

The models live in core.chat's worker process, loaded on the first message and kept per
(model, adapter) for every browser; a page holds only its conversation.
"""
from __future__ import annotations

import dataclasses
import threading
from functools import partial
from dataclasses import dataclass

import gradio as gr

from core import presets, trust
from core.chat import sampling
from core.errors import DanluError, InputError
from core.export import list_exports
from core.messages import Msg
from core.runs import resolve_trained_run
from webui import numbers
from webui.i18n import L, error_text, keep_said, said_in_all, say, tr
from webui.jobview import finished_runs, with_table_status
from webui.tabs.chat_share import demo_panel, demo_starting, start_demo, stop_demo



@dataclass(frozen=True)
class ChatTab:
    model: gr.Dropdown
    adapter: gr.Dropdown
    compare: gr.Checkbox
    system: gr.Textbox
    sampling: list                 # temperature, top_p, max_new_tokens, repetition_penalty
    tuned: gr.Chatbot
    base: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    clear: gr.Button
    unload: gr.Button
    note: gr.Markdown
    said: gr.Textbox               # the note in every language (JSON, hidden), for a language switch
    demo_host: gr.Textbox
    demo_port: gr.Number
    demo_user: gr.Textbox
    demo_password: gr.Textbox
    demo_share: gr.Checkbox
    demo_start: gr.Button
    demo_message: gr.Markdown
    demo_said: gr.Textbox          # the demo message in every language (JSON, hidden)
    demos: gr.Dataframe
    demo_pick: gr.Dropdown
    demo_stop: gr.Button


class Sessions:
    """Loaded chat models of this GUI process, keyed by (model, adapter): two pages chatting with the
    same model share it. Loading happens once per key, under that key's lock."""

    def __init__(self, gui):
        self.gui = gui
        self._ids: dict[tuple, str] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, model: str, adapter: str | None) -> str:
        key = _key(model, adapter)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._ids:
                self._ids[key] = self.gui.chat_engine().load(model or None, adapter=adapter or None,
                                                                      origin=trust.BROWSER)
            return self._ids[key]

    def loaded(self, model: str, adapter: str | None) -> bool:
        return _key(model, adapter) in self._ids

    def unload_all(self) -> int:
        with self._lock:
            ids, self._ids = list(self._ids.values()), {}
        for sid in ids:
            self.gui.chat_engine().unload(sid)
        return len(ids)


def _key(model, adapter) -> tuple:
    """(model, adapter) as a key: the model picker takes typed names, so a direct call may send a list or a
    dict (unhashable: TypeError, a 500); as its repr it is a key like another, and loading it says in words
    that it names no model (core.trust.check_chat)."""
    return (model if isinstance(model, (str, type(None))) else repr(model), adapter or None)


# ---- choosing a model --------------------------------------------------------------------------
def model_choices(gui, lang: str) -> list[tuple[str, str]]:
    """Merged exports first (ready to use, marked so in `lang`), then the model presets."""
    mark = tr("chat.export_mark", lang)
    out = [(f"{e['name']} · {mark}", e["name"]) for e in list_exports(gui.ws) if e.get("complete")]
    out += [(f"{p.name} · {p.data.get('family', '')}", p.data["base_model"])
            for p in presets.all_presets() if p.kind == "model"]
    return out


def adapter_choices(gui, lang: str) -> list[tuple[str, str]]:
    return [(tr("chat.no_adapter", lang), "")] + finished_runs(gui)


def pick_adapter(gui, adapter: str | None):
    """Inputs: the chosen training run. Outputs: the base model it was trained from."""
    if not adapter:
        return gr.skip()
    try:
        base = resolve_trained_run(gui.ws, adapter).base_model
    except DanluError:
        return gr.skip()
    return base or gr.skip()


def pick_sampling(gui, model: str | None, adapter: str | None):
    """Inputs: the chosen model and training run. Outputs: the temperature and top-p sliders at the model's
    recommended settings (its generation_config.json: a tiny demo model answers garbled at 0.7), else
    Danlu's 0.7 and 0.9; the sliders' help says so."""
    from core.model_sampling import default_sampling
    named = [v if isinstance(v, str) and v else None for v in (model, adapter)]  # a direct call may send any JSON
    return tuple(default_sampling(gui.ws, *named, origin=trust.BROWSER)[0][k] for k in ("temperature", "top_p"))


def refresh_choices(gui, lang: str, model: str | None, adapter: str | None):
    """Inputs: language, current choices. Outputs: both pickers with the newest runs and exports. With no
    run chosen yet, the newest finished one is offered: after training, Chat talks to its result."""
    adapters = adapter_choices(gui, lang)
    if not adapter and len(adapters) > 1:
        adapter = adapters[1][1]
    # the model picker takes typed names, so a direct HTTP call may send any JSON: only text names a model
    # (10**30 sent back made Gradio answer HTTP 500, "Integer exceeds 64-bit range")
    model = model if isinstance(model, str) else None
    return gr.update(choices=model_choices(gui, lang), value=model), gr.update(choices=adapters, value=adapter or "")


def refresh_on_open(gui, lang: str, model: str | None, adapter: str | None, note: str | None, seen: str | None):
    """The tab's opening: refresh_choices, then the note under the chat, which says why when the job table
    cannot be read (the pickers keep what they offer: jobview.with_table_status), then the newest run.
    A run finished since the tab last listed runs (`seen`) is chosen: the picker kept the run newest when
    the server started, and a Korean newcomer talked to that older run after training (a walk in Korean)."""
    newest = []

    def read():
        runs = finished_runs(gui)
        newest.append(runs[0][1] if runs else "")
        return refresh_choices(gui, lang, model, adapter if newest[0] == (seen or "") else newest[0] or adapter)
    return (*with_table_status(gui, lang, note, read, 2), newest[0] if newest else gr.skip())


# ---- talking -----------------------------------------------------------------------------------
def user_turn(message: str, tuned: list, base: list, compare: bool):
    """Inputs: the typed message, both conversations, compare mode. Outputs: the conversations with the
    message added, and an empty message box. Runs at once; the answer streams in the next step."""
    message = (message or "").strip()
    if not message:
        return gr.skip(), gr.skip(), gr.skip()
    turn = {"role": "user", "content": message}
    return list(tuned or []) + [turn], (list(base or []) + [turn]) if compare else gr.skip(), ""


def answer(gui, sessions: Sessions, lang: str, model: str, adapter: str | None, compare: bool, system: str,
           temperature, top_p, max_new_tokens, repetition_penalty, tuned: list, base: list):
    """Inputs: language, model, adapter, compare mode, system prompt, sampling, both conversations.
    Outputs (streamed): both conversations and a note. The fine-tuned answer comes first, then the
    base model's (one worker serves both, one answer at a time). The conversations keep their newest
    messages only (kept_in_view); the note says when older ones were taken out."""
    tuned, base = list(tuned or []), list(base or [])
    if not tuned or tuned[-1]["role"] != "user":
        yield gr.skip(), gr.skip(), gr.skip()
        return
    try:  # checked before a model loads: the sliders sent straight to the HTTP API may hold anything
        settings = dict(system=system or "", **sampling(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                                        repetition_penalty=repetition_penalty))
    except InputError as e:  # each slider named as the page names it
        said = [say(dataclasses.replace(p, where=tr("chat." + p.where, lang)).as_msg(), lang) for p in e.problems]
        tuned.append({"role": "assistant", "content": "⚠ " + "; ".join(said)})
        yield tuned, gr.skip(), ""
        return
    targets = [("tuned", model, adapter)] + ([("base", model, None)] if compare and adapter else [])
    (tuned, dropped), (base, _) = kept_in_view(tuned), kept_in_view(base)
    convs = {"tuned": tuned, "base": base}
    note = answer_note(lang, compare and not adapter, dropped)
    for which, m, a in targets:
        for _ in reply(gui, sessions, lang, convs[which], m, a, settings):
            yield convs["tuned"], convs["base"] if compare else gr.skip(), note


# The conversation the page keeps and sends back with every message: the newest messages only. It grew
# without bound (each call carried the whole of it, twice in compare mode), while the model reads only the
# newest part anyway (core.engine.inference.prompt_room: its context window less the answer's room).
KEEP_MESSAGES = 100     # 50 exchanges
KEEP_CHARS = 300_000    # about 75,000 tokens: more than most models' window less an answer


def kept_in_view(conv: list) -> tuple[list, int]:
    """The conversation's newest messages, fewer than KEEP_MESSAGES (its answer comes next) and at most
    KEEP_CHARS, starting with a user message (the newest one always stays, however long), and how many
    older messages were taken out."""
    size = sum(_chars(m) for m in conv)
    start = 0
    while start < len(conv) - 1 and (len(conv) - start >= KEEP_MESSAGES or size > KEEP_CHARS  # >=: room for the answer
                                     or conv[start].get("role") != "user"):
        size -= _chars(conv[start])
        start += 1
    return conv[start:], start


def _chars(message: dict) -> int:
    content = message.get("content")
    return len(content) if isinstance(content, str) else len(str(content))


def answer_note(lang: str, needs_adapter: bool, dropped: int):
    """The line under the chat: compare needs a run; older messages taken out of view (this answer's turn)."""
    def words(code: str) -> str:
        lines = [tr("chat.compare_needs_adapter", code)] if needs_adapter else []
        if dropped:
            lines.append(say(Msg("chat.older_dropped", n=dropped, kept=KEEP_MESSAGES, chars=KEEP_CHARS), code))
        return "\n\n".join(lines)
    return said_in_all(words, lang) if needs_adapter or dropped else ""


def reply(gui, sessions: Sessions, lang: str, conv: list, model: str, adapter: str | None, settings: dict):
    """One answer added to `conv`; each step yields once, for the page to show the conversation again.
    Its bubble says what is happening until the words come: loading the model (the first message only),
    then writing the answer (the model reads the whole conversation before its first word, which can take
    a while on a CPU); the words replace that, and an answer without any words says so at the end."""
    conv.append({"role": "assistant", "content": ""})
    if not sessions.loaded(model, adapter):
        conv[-1]["content"] = tr("chat.loading", lang)
        yield
    try:
        sid = sessions.get(model, adapter)
        conv[-1]["content"] = tr("chat.writing", lang)
        yield
        history = [{"role": t["role"], "content": t["content"]} for t in conv[:-1]]
        text = ""
        for delta in gui.chat_engine().stream(sid, history, **settings):
            text += delta
            conv[-1]["content"] = text or tr("chat.writing", lang)
            yield
        conv[-1]["content"] = text or tr("chat.empty_answer", lang)
    except InputError as e:  # each problem and its fix, in the page's language
        conv[-1]["content"] = "⚠ " + "; ".join(say(p.as_msg(), lang) for p in e.problems)
    except DanluError as e:
        conv[-1]["content"] = f"⚠ {error_text(e, lang)}"
    yield


def clear():
    """Outputs: both conversations emptied."""
    return [], []


def unload(sessions: Sessions, lang: str) -> str:
    """Outputs: how many models were unloaded (their memory is freed), in every language (i18n.Said)."""
    n = sessions.unload_all()
    return said_in_all(lambda code: f"{tr('chat.unloaded', code)}: {n}", lang)


# ---- layout ------------------------------------------------------------------------------------
def build(gui) -> ChatTab:
    runs = finished_runs(gui)
    choices = model_choices(gui, "en")
    picked = (_default_model(gui, runs, choices), runs[0][1] if runs else "")
    temperature, top_p = pick_sampling(gui, *picked)  # the page opens with the default pick's recommendation
    with gr.Row(equal_height=True):
        adapter = gr.Dropdown(choices=adapter_choices(gui, "en"), value=picked[1],
                              label=L("chat.adapter"), info=L("chat.adapter_help"), elem_id="chat-adapter", scale=2)
        model = gr.Dropdown(choices=choices, value=picked[0], allow_custom_value=True,
                            label=L("chat.model"), info=L("chat.model_help"), elem_id="chat-model", scale=2)
        compare = gr.Checkbox(False, label=L("chat.compare"), info=L("chat.compare_help"), elem_id="chat-compare",
                              scale=1)
    system = gr.Textbox(label=L("chat.system"), placeholder=L("chat.system_placeholder"), lines=1, max_lines=4,
                        elem_id="chat-system")
    with gr.Accordion(L("chat.sampling"), open=False):
        with gr.Row():
            sampling = [
                numbers.Slider(0.0, 2.0, value=temperature, step=0.05, label=L("chat.temperature"), info=L("chat.temperature_help"),
                               elem_id="chat-temperature"),
                numbers.Slider(0.05, 1.0, value=top_p, step=0.05, label=L("chat.top_p"), info=L("chat.top_p_help"),
                               elem_id="chat-top-p"),
                numbers.Slider(1, 2048, value=256, step=1, label=L("chat.max_new_tokens"), info=L("chat.max_new_tokens_help"),
                               elem_id="chat-max-new-tokens"),
                numbers.Slider(1.0, 2.0, value=1.1, step=0.05, label=L("chat.repetition_penalty"),
                               info=L("chat.repetition_penalty_help"), elem_id="chat-repetition-penalty"),
            ]
    with gr.Row(equal_height=True):
        tuned = gr.Chatbot(label=L("chat.answers"), height=420, elem_id="chat-bot", buttons=["copy"], scale=1)
        base = gr.Chatbot(label=L("chat.base_answers"), height=420, elem_id="chat-bot-base", buttons=["copy"],
                          visible=False, scale=1)
    with gr.Row(equal_height=True):
        message = gr.Textbox(label=L("chat.message"), placeholder=L("chat.message_placeholder"), lines=1, max_lines=6,
                             elem_id="chat-input", scale=5)
        send = gr.Button(L("chat.send"), variant="primary", elem_id="chat-send", scale=1, min_width=100)
    with gr.Row():
        clear_btn = gr.Button(L("chat.clear"), size="sm", elem_id="chat-clear")
        unload_btn = gr.Button(L("chat.unload"), size="sm", elem_id="chat-unload")
    note = gr.Markdown(elem_id="chat-note")
    said = gr.Textbox("", visible=False, label="said", elem_id="chat-said")
    d = demo_panel(gui)
    return ChatTab(model=model, adapter=adapter, compare=compare, system=system, sampling=sampling, tuned=tuned,
                   base=base, message=message, send=send, clear=clear_btn, unload=unload_btn, note=note, said=said, **d)


def _default_model(gui, runs, choices):
    if runs:
        try:
            return resolve_trained_run(gui.ws, runs[0][1]).base_model or choices[0][1]
        except DanluError:
            pass
    return "builtin:danlu-tiny"


def show_base(compare: bool):
    """Inputs: compare mode. Outputs: the base model's conversation shown or hidden."""
    return gr.update(visible=bool(compare))


def wire(t: ChatTab, gui, lang) -> None:
    """This tab's own events (the language and tab-switch wiring is in webui/app.py)."""
    sessions = Sessions(gui)
    # the sliders follow the pick: a run's, once its base is set (a base picked already sends no model change)
    picked = dict(inputs=[t.model, t.adapter], outputs=t.sampling[:2], api_visibility="private")
    t.adapter.change(partial(pick_adapter, gui), inputs=[t.adapter], outputs=[t.model],
                     api_visibility="private").then(partial(pick_sampling, gui), **picked)
    t.model.change(partial(pick_sampling, gui), **picked)
    t.compare.change(show_base, inputs=[t.compare], outputs=[t.base], api_visibility="private")
    answer_inputs = [lang, t.model, t.adapter, t.compare, t.system, *t.sampling, t.tuned, t.base]
    for trigger, name in ((t.send.click, "chat_send"), (t.message.submit, None)):
        ev = trigger(user_turn, inputs=[t.message, t.tuned, t.base, t.compare], outputs=[t.tuned, t.base, t.message],
                     api_visibility="private")
        ev.then(keep_said(partial(answer, gui, sessions), 2), inputs=answer_inputs,
                outputs=[t.tuned, t.base, t.note, t.said],
                show_progress_on=[t.tuned, t.base],  # the conversations show a reply is on its way
                **({"api_name": name} if name else {"api_visibility": "private"}))
    t.clear.click(clear, outputs=[t.tuned, t.base], api_visibility="private")
    t.unload.click(keep_said(partial(unload, sessions), 0), inputs=[lang], outputs=[t.note, t.said], api_name="chat_unload")
    # the demo's messages also answer their words in every language to demo_said (a language switch)
    starting = t.demo_start.click(keep_said(demo_starting, 0),
                                  inputs=[lang, t.demo_host, t.demo_user, t.demo_password, t.demo_share],
                                  outputs=[t.demo_message, t.demo_said], api_visibility="private")
    starting.then(keep_said(partial(start_demo, gui), 0),
                  inputs=[lang, t.model, t.adapter, t.system, t.demo_host, t.demo_port, t.demo_user, t.demo_password,
                          t.demo_share],
                  outputs=[t.demo_message, t.demos, t.demo_pick, t.demo_said], show_progress_on=[t.demo_message],
                  api_name="share_demo")
    t.demo_stop.click(keep_said(partial(stop_demo, gui), 0), inputs=[lang, t.demo_pick],
                      outputs=[t.demo_message, t.demos, t.demo_pick, t.demo_said], api_name="stop_demo")
