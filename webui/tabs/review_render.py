"""How the Review tab draws what core/data/review*.py answers: a row as chat bubbles (sensitive data
and search words highlighted), the counts line, the findings table and a version diff side by side.
Plain functions from plain values to HTML/Markdown text; every piece of the data is escaped."""
from __future__ import annotations

import difflib
import html
import json
import re

import pandas as pd

from core.data.conversation import conversation
from core.data.review import TERMS
from webui.i18n import STRINGS, recorded_text, tr
from webui.tabs.hyperparams_tab import problems_markdown

CSS = """
#rv-chat .rv-turn {border-radius: 10px; padding: 8px 12px; margin: 6px 0; white-space: pre-wrap; word-break: break-word;
  border: 1px solid var(--border-color-primary);}
#rv-chat .rv-role {font-size: 0.78em; font-weight: 600; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); margin-bottom: 2px;}
#rv-chat .rv-system {background: var(--background-fill-secondary); font-size: 0.92em;}
#rv-chat .rv-user {background: #eff6ff; margin-right: 12%;}
#rv-chat .rv-assistant {background: #f0fdf4; margin-left: 12%;}
#rv-chat .rv-text {background: var(--background-fill-secondary);}
#rv-chat .rv-pair {display: grid; grid-template-columns: 1fr 1fr; gap: 10px;}
#rv-chat .rv-pair .rv-assistant {margin-left: 0;}
#rv-chat .rv-rejected .rv-assistant {background: #fef2f2;}
#rv-chat mark.rv-pii {background: #fde68a; border-bottom: 2px solid #d97706; padding: 0 2px; border-radius: 3px;}
#rv-chat mark.rv-pii::after {content: attr(data-kind); font-size: 0.7em; color: #92400e; margin-left: 3px;}
#rv-chat mark.rv-find {background: #bfdbfe; padding: 0 1px; border-radius: 2px;}
#rv-chat .rv-empty {color: var(--body-text-color-subdued); font-style: italic;}
#rv-mark-line {font-size: 0.95em;}
.rv-diff {max-height: 640px; overflow-y: auto;}
.rv-diff table {width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 0.88em;}
.rv-diff td, .rv-diff th {border: 1px solid var(--border-color-primary); padding: 4px 6px; vertical-align: top;
  white-space: pre-wrap; word-break: break-word;}
.rv-diff .rv-added {background: #f0fdf4;} .rv-diff .rv-removed {background: #fef2f2;}
.rv-diff ins {background: #bbf7d0; text-decoration: none;} .rv-diff del {background: #fecaca;}
"""
ROLE_KEYS = {"system": "rv.role.system", "user": "rv.role.user", "assistant": "rv.role.assistant", "text": "rv.role.text"}


def lang_name(code: str, lang: str) -> str:
    key = f"rv.lang.{code}" if code else "rv.no_text"
    return tr(key, lang) if key in STRINGS else code


def _terms(search: str, regex: bool) -> re.Pattern | None:
    """What to highlight for the search: the words and phrases, or the pattern itself."""
    search = (search or "").strip()
    if not search:
        return None
    try:
        if regex:
            return re.compile(search, re.IGNORECASE | re.MULTILINE)
        words = sorted({(p or w) for p, w in TERMS.findall(search)}, key=len, reverse=True)
        return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    except re.error:
        return None


def highlight(text: str, hits: list[dict], find: re.Pattern | None) -> str:
    """Escaped text with sensitive-data findings (yellow, their kind after them) and search matches (blue)."""
    spans = [(h["start"], h["end"], "pii", h["kind"]) for h in hits]
    taken = [(a, b) for a, b, _, _ in spans]
    if find is not None:
        for m in find.finditer(text):
            if m.end() > m.start() and all(m.end() <= a or m.start() >= b for a, b in taken):
                spans.append((m.start(), m.end(), "find", ""))
    out, pos = [], 0
    for a, b, what, kind in sorted(spans):
        if a < pos:
            continue
        out.append(html.escape(text[pos:a]))
        label = f' data-kind="{html.escape(kind)}" title="{html.escape(kind)}"' if kind else ""
        out.append(f'<mark class="rv-{what}"{label}>{html.escape(text[a:b])}</mark>')
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _bubble(turn: dict, hits: list[dict], find, lang: str) -> str:
    role = turn["role"] if turn["role"] in ROLE_KEYS else "text"
    label = tr(ROLE_KEYS[role], lang) if turn["role"] in ROLE_KEYS else html.escape(turn["role"])
    mine = [h for h in hits if h["field"] == turn["path"]]
    body = highlight(turn["text"], mine, find) if turn["text"].strip() else f'<span class="rv-empty">({tr("rv.no_text", lang)})</span>'
    return f'<div class="rv-turn rv-{role}"><div class="rv-role">{label}</div>{body}</div>'


def chat_html(view: dict | None, search: str, regex: bool, lang: str) -> str:
    """A row as the conversation the model learns; a preference pair's two answers side by side."""
    if view is None:
        return f"<p>{html.escape(tr('rv.no_match', lang))}</p>"
    conv, hits, find = view["conversation"], view["hits"], _terms(search, regex)
    parts = [_bubble(t, hits, find, lang) for t in conv["turns"]]
    if conv["answers"]:
        cols = []
        for ans in conv["answers"]:
            title = tr("rv.chosen" if ans["label"] == "chosen" else "rv.rejected", lang)
            inner = "".join(_bubble(t, hits, find, lang) for t in ans["turns"])
            cols.append(f'<div class="rv-{html.escape(ans["label"])}"><div class="rv-role">{title}</div>{inner}</div>')
        parts.append(f'<div class="rv-pair">{"".join(cols)}</div>')
    return "".join(parts)


def editable_turns(conv: dict, lang: str) -> tuple[list[dict], list[tuple[str, str]]]:
    """The turns a reviewer may edit, and the turn picker's choices: "2. Assistant". A preference pair's
    answers are named as the chat names them ("3. Assistant · Rejected answer"): both read "Assistant",
    and the picker's default, the last one, was the rejected answer without saying so."""
    pairs = [(t, "") for t in conv["turns"]] + [(t, ans["label"]) for ans in conv["answers"] for t in ans["turns"]]
    pairs = [(t, label) for t, label in pairs if t["editable"] and t["path"]]
    names = []
    for i, (t, label) in enumerate(pairs):
        role = tr(ROLE_KEYS[t["role"]], lang) if t["role"] in ("system", "user", "assistant") else t["role"]
        answer = f" · {tr('rv.chosen' if label == 'chosen' else 'rv.rejected', lang)}" if label else ""
        names.append((f"{i + 1}. {role}{answer}", t["path"]))
    return [t for t, _ in pairs], names


def position_markdown(view: dict | None, k: int, m: int, lang: str) -> str:
    if view is None:
        return ""
    text = tr("rv.position", lang, row=view["row"], line=view["line"] if view["line"] is not None else "—", k=k + 1, m=m,
               tokens=view["tokens"], lang=lang_name(view["lang"], lang))
    if view["mark"]:
        text += f" · **{tr('rv.mark.' + view['mark'], lang)}**"
    if view["dup"]:
        text += " · " + tr("rv.dup_of", lang, g=view["dup"])
    if view["problems"]:
        from core.data.issues import TITLES
        from webui.tabs.dataset_tab import kind_title
        text += f" · ⚠ {tr('rv.problems_of', lang)}: " + ", ".join(kind_title(c, TITLES.get(c, c), lang) for c in view["problems"])
    return text


def counts_markdown(c: dict, info: dict, lang: str) -> str:
    lines = [tr("rv.matched", lang, m=c["matched"], n=c["total"]) + " · " +
             tr("rv.progress", lang, share=c["share"], r=c["reviewed"], keep=c["keep"], drop=c["drop"], fix=c["fix"])]
    if c["drop"]:
        lines.append(tr("rv.training", lang, t=c["total"] - c["drop"], d=c["drop"]))
    if c["fix"]:
        lines.append(tr("rv.fix_trained", lang, f=c["fix"]))
    if c["unreadable"]:
        lines.append("⚠ " + tr("rv.unreadable", lang, u=c["unreadable"]))
    return "  \n".join(lines)


def hits_frame(found: dict | None, lang: str, limit: int = 500) -> pd.DataFrame:
    cols = [tr(f"rv.col.{c}", lang) for c in ("row", "kind", "text", "field")]
    rows = [[h["row"], tr(f"rv.kind.{h['kind']}", lang), h["text"], h["field"]] for h in (found or {}).get("hits", [])[:limit]]
    return pd.DataFrame(rows, columns=cols).astype(str)


def _plain(rec, fmt, cmap) -> str:
    """A row as lines of `role: text`, for the diff."""
    if rec is None:
        return ""
    conv = conversation(rec, fmt, cmap)
    turns = conv["turns"] + [t for a in conv["answers"] for t in a["turns"]]
    return "\n".join(f"{t['role']}: {t['text']}" for t in turns) if turns else json.dumps(rec, ensure_ascii=False)


def _word_diff(a: str, b: str) -> tuple[str, str]:
    wa, wb = re.split(r"(\s+)", a), re.split(r"(\s+)", b)
    left, right = [], []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, wa, wb, autojunk=False).get_opcodes():
        x, y = html.escape("".join(wa[i1:i2])), html.escape("".join(wb[j1:j2]))
        left.append(x if tag == "equal" else f"<del>{x}</del>" if x else "")
        right.append(y if tag == "equal" else f"<ins>{y}</ins>" if y else "")
    return "".join(left), "".join(right)


def diff_html(d: dict, fmt, cmap, lang: str) -> str:
    head = tr("rv.diff.summary", lang, a=d["added"], r=d["removed"], c=d["changed"], mk=d["marks_changed"])
    total = d["added"] + d["removed"] + d["changed"]
    if total > d["shown"]:
        head += f" ({tr('rv.diff.first', lang, n=d['shown'])})"
    v = tr("rv.version", lang)
    rows = [f"<tr><th style='width:14%'></th><th>{v} {d['a']}: {html.escape(recorded_text(d, 'summary_a', lang))}</th>"
            f"<th>{v} {d['b']}: {html.escape(recorded_text(d, 'summary_b', lang))}</th></tr>"]
    for it in d["items"]:
        a, b = _plain(it["before"], fmt, cmap), _plain(it["after"], fmt, cmap)
        left, right = _word_diff(a, b) if it["status"] == "changed" else (html.escape(a), html.escape(b))
        where = " → ".join(str(r) for r in (it["row_a"], it["row_b"]) if r is not None)
        rows.append(f"<tr class='rv-{it['status']}'><td>{tr('rv.diff.' + it['status'], lang)}<br>#{where}</td>"
                    f"<td>{left}</td><td>{right}</td></tr>")
    for mk in d["marks"]:
        before = tr("rv.mark." + mk["before"], lang) if mk["before"] else "—"
        after = tr("rv.mark." + mk["after"], lang) if mk["after"] else "—"
        rows.append(f"<tr><td>{tr('rv.mark_filter', lang)}<br>#{mk['row']}</td><td>{before} {html.escape(mk['note_before'])}</td>"
                    f"<td>{after} {html.escape(mk['note_after'])}</td></tr>")
    return f"<div class='rv-diff'><p><b>{html.escape(head)}</b></p><table>{''.join(rows)}</table></div>"


def imported_markdown(res: dict, theirs: bool, lang: str) -> str:
    """What an import of marks did, in `lang`: applied and same, conflicts listed, rows not found."""
    lines = ["✓ " + tr("rv.imported", lang, a=res["applied"], s=res["same"])]
    if res["conflicts"]:
        how = tr("rv.took_theirs" if theirs else "rv.kept_mine", lang)
        lines.append(f"\n**{tr('rv.conflicts', lang, n=len(res['conflicts']))}** ({how})\n")
        lines.append(f"| {tr('rv.col.row', lang)} | {tr('rv.here', lang)} | {tr('rv.in_file', lang)} |\n|---|---|---|")
        for c in res["conflicts"][:50]:
            lines.append(f"| {c['row']} | {tr('rv.mark.' + c['mine'], lang)} {c['mine_note']} | "
                         f"{tr('rv.mark.' + c['theirs'], lang)} {c['theirs_note']} |")
    gone = [p for p in res["problems"] if p.msg.code == "marks.row_gone"]
    if gone:
        lines.append(f"\n**{tr('rv.not_found', lang, n=len(gone))}**: " + ", ".join(p.where for p in gone[:30]))
    other = [p for p in res["problems"] if p.msg.code != "marks.row_gone"]  # an unknown mark, a row named twice
    if other:
        lines.append("\n" + problems_markdown(other[:30], lang, "rv.file_lines"))
    return "\n".join(lines)
