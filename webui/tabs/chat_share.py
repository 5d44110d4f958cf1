"""Chat tab's "Share a demo" panel: start and stop the chat-only app of core.demos, and say in the page's
own words (not the command line's options) why one may not start.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from core import demos, trust
from core.errors import DanluError, InputError, Problem
from webui import numbers
from webui.i18n import L, error_text, lang_code, said_in_all, say, tr
from webui.tabs.hyperparams_tab import problems_markdown

DEMO_COLUMNS = ["id", "url", "model", "login"]
# ---- the chat-only demo ------------------------------------------------------------------------
# core names the command line's options (--host, --share, --auth); the page names its own fields
EXPOSURE_WORDS = {"--host": ("chat.demo_host", "chat.login_or_local"), "--share": ("chat.demo_share", "chat.login_for_link")}


def exposure_markdown(problems: list[Problem], lang: str) -> str:
    """Why a demo may not start, in the words of this page's fields (not the command line's options)."""
    lines = [f"⚠ **{tr('chat.cannot_start', lang)} ({len(problems)})**"]
    for p in problems:
        field, fix = EXPOSURE_WORDS.get(p.where, (None, None))
        where = tr(field, lang) if field else p.where
        hint = tr(fix, lang) if fix else say(p.hint_msg, lang)
        lines.append(f"- **{where}**: {say(p.msg, lang)}" + (f" — {hint}" if hint else ""))
    return "\n".join(lines)


def demo_starting(lang: str, host: str, user: str, password: str, share: bool) -> str:
    """Inputs: language, address, login, share link. Outputs: the message at once: starting, or why it
    cannot (start_demo follows and says the same). Each message of the demo is said in every language
    (i18n.Said): a language switch shows it again."""
    try:
        demos.check_exposure((host or "127.0.0.1").strip(), bool(share), _auth(user, password))
    except InputError as e:
        return said_in_all(lambda code: exposure_markdown(e.problems, code), lang)
    return said_in_all(lambda code: tr("chat.demo_starting", code), lang)


def start_demo(gui, lang: str, model: str, adapter: str | None, system: str, host: str, port, user: str,
               password: str, share: bool):
    """Inputs: language, model, adapter, system prompt, address, port, login, share link. Outputs:
    message, the demos table, the demo picker. Takes a while (the demo loads its own model), so
    demo_starting has answered before."""
    auth = _auth(user, password)
    try:
        demos.check_exposure((host or "127.0.0.1").strip(), bool(share), auth)
    except InputError as e:
        return said_in_all(lambda code: exposure_markdown(e.problems, code), lang), gr.skip(), gr.skip()
    try:
        rec = demos.start_demo(gui.ws, model, adapter or None, origin=trust.BROWSER, host=(host or "127.0.0.1").strip(),
                               port=port if port not in (None, "", 0) else None, auth=auth, share=bool(share), system=system or "",
                               lang=lang_code(lang))
    except InputError as e:
        return said_in_all(lambda code: problems_markdown(e.problems, code, "chat.cannot_start", labels="chat.demo_"), lang), gr.skip(), gr.skip()
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang), gr.skip(), gr.skip()
    url = rec.get("share_url") or rec.get("url")
    no_link = share and not rec.get("share_url")
    return (said_in_all(lambda code: f"✓ {tr('chat.demo_running', code)} {url}" + (
        f"\n\n⚠ {tr('chat.no_share_link', code)} {rec.get('share_error') or ''}" if no_link else ""), lang),
            *demo_table(gui, lang))


def _auth(user: str, password: str) -> tuple[str, str] | None:
    return (user.strip(), password) if (user or "").strip() and password else None


def demo_table(gui, lang: str):
    """Outputs: the running demos as a table, and the picker for Stop."""
    recs = demos.list_demos(gui.ws)
    rows = [[r["id"], r.get("share_url") or r.get("url"), r.get("model"), tr("chat.yes" if r.get("login") else "chat.no", lang)]
            for r in recs]
    frame = pd.DataFrame(rows, columns=[tr("chat.col." + c, lang) for c in DEMO_COLUMNS])
    return frame, gr.update(choices=[r["id"] for r in recs], value=recs[0]["id"] if recs else None)


def stop_demo(gui, lang: str, demo_id: str | None):
    """Inputs: language, demo. Outputs: message, demos table, picker."""
    if not demo_id:
        return said_in_all(lambda code: tr("chat.no_demo", code), lang), gr.skip(), gr.skip()
    try:
        demos.stop_demo(gui.ws, demo_id)
    except DanluError as e:
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang), gr.skip(), gr.skip()
    return (said_in_all(lambda code: f"■ {tr('chat.demo_stopped', code)} {demo_id}", lang), *demo_table(gui, lang))


def demo_panel(gui) -> dict:
    with gr.Accordion(L("chat.share_title"), open=False, elem_id="chat-share"):
        gr.Markdown(L("chat.share_intro"), elem_classes=["muted"])
        with gr.Row():
            host = gr.Textbox("127.0.0.1", label=L("chat.demo_host"), info=L("chat.demo_host_help"), elem_id="demo-host")
            port = numbers.Number(None, precision=0, label=L("chat.demo_port"), info=L("chat.demo_port_help"),
                                  elem_id="demo-port")
            share = gr.Checkbox(False, label=L("chat.demo_share"), info=L("chat.demo_share_help"), elem_id="demo-share")
        with gr.Row():
            user = gr.Textbox(label=L("chat.demo_user"), elem_id="demo-user")
            password = gr.Textbox(label=L("chat.demo_password"), type="password", elem_id="demo-password")
        start = gr.Button(L("chat.share"), elem_id="demo-start")
        message = gr.Markdown(elem_id="demo-message")
        said = gr.Textbox("", visible=False, label="said", elem_id="demo-said")
        frame, picker = demo_table(gui, "en")
        table = gr.Dataframe(value=frame, label=L("chat.demos"), interactive=False, elem_id="demo-list")
        with gr.Row():
            pick = gr.Dropdown(choices=picker["choices"], value=picker["value"], label=L("chat.demo_pick"),
                               elem_id="demo-pick")
            stop = gr.Button(L("chat.demo_stop"), variant="stop", size="sm", elem_id="demo-stop")
    return dict(demo_host=host, demo_port=port, demo_user=user, demo_password=password, demo_share=share,
                demo_start=start, demo_message=message, demo_said=said, demos=table, demo_pick=pick, demo_stop=stop)
