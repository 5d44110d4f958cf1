"""The Review tab's handlers: small functions over plain values that call core.data.review* and
return what the page shows. The filters arrive as widget values (FILTER_INPUTS order in review_tab.py);
the current row is a record number in a hidden textbox. Each view also writes the filters it used to a
hidden box as JSON (`query`): the actions read that one box instead of nine widgets, because every input
of an event stays in the page's loading-status list (tests/webui/test_build_ui.py keeps events narrow).

Every change to the data (a mark, an edit, a replacement, an import, Undo) is a new version made by
core; the handlers then also answer the `dataset` setting with core's training file, so the Train
tab trains on the reviewed version.
"""
from __future__ import annotations

import html
import json

import gradio as gr

from core import data as D
from core import trust
from core.data import pii
from core.data.diff import diff_versions
from core.data.marks_csv import import_marks
from core.data.review import Filters, choices, counts, open_desk, select
from core.data.review_actions import edit_turn, export_marks, mark_rows, redact, row_view, scan_dataset
from core.errors import DanluError, InputError
from webui.i18n import error_text, number, recorded_text, said_in_all, tr
from webui.serving import downloads_dir
from webui.tabs.hyperparams_tab import problems_markdown
from webui.tabs.review_query import (changed_since_shown, desk_lock, matched_text, query, query_text, remember_own, rows_shown,
                                     shown_of, shown_text)
from webui.tabs.review_render import (chat_html, counts_markdown, diff_html, editable_turns, hits_frame, imported_markdown,
                                      lang_name, position_markdown)

ALL = "all"
SORTS = ("position", "longest", "shortest", "duplicates")
MARK_FILTERS = ("unreviewed", "reviewed", "keep", "drop", "fix")
BULK_MARKS = ("keep", "drop", "fix", "clear")
N_VIEW = 8   # counts, position, chat, note, turn, edit text, row, query


def filters(search, regex, problem, mark, langf, dup, mn, mx, sort) -> Filters:
    num = lambda v: None if v in (None, "", 0) else v  # noqa: E731  (an empty number box reads 0: no limit; core checks the rest)
    pick = lambda v: "" if v in (None, ALL) else str(v)  # noqa: E731
    return Filters(search=search or "", regex=bool(regex), problem=pick(problem), mark=pick(mark), lang=pick(langf),
                   dup=pick(dup), min_tokens=num(mn), max_tokens=num(mx), sort=sort or "position")


def _empty(lang: str, text: str, f: Filters | None = None) -> tuple:
    return (text, "", "", "", gr.update(choices=[], value=None), "", "", query_text(f or Filters()))


def view(gui, ds_id, f: Filters, row, lang: str, step: int = 0, prefer: int | None = None) -> tuple:
    """The N_VIEW outputs for the row `row` moved by `step` within the matching rows (the first match
    when `row` no longer matches); `prefer`: show this row if it matches."""
    if not ds_id:
        return _empty(lang, tr("rv.none", lang), f)
    try:
        desk = open_desk(gui.ws, ds_id)
        sel = select(desk, f)  # it checks the token boxes first: what they sent may be anything (NaN, 5,000 digits)
    # the query box keeps the filters that cannot be used: "Mark every matching row" then refuses them
    # in words (an empty box is no filter at all: it marked every row of the dataset)
    except InputError as e:  # a box named as the page names it (rv.min_tokens: "Tokens from")
        return _empty(lang, problems_markdown(e.problems, lang, "rv.filters_bad", labels="rv."), f)
    except DanluError as e:
        return _empty(lang, f"⚠ {error_text(e, lang)}", f)
    c = counts_markdown(counts(desk, sel), desk.info, lang)
    rows = desk.index.rows[sel]
    if not len(sel):
        return (c, "", chat_html(None, "", False, lang), "", gr.update(choices=[], value=None), "", "", matched_text(f, rows))
    k = _index_of(rows, prefer)
    if k is None:
        k = _index_of(rows, row)
        k = 0 if k is None else min(max(k + step, 0), len(rows) - 1)
    v = row_view(desk, int(rows[k]))
    turns, turn_choices = editable_turns(v["conversation"], lang)
    last = next((t for t in reversed(turns) if t["role"] == "assistant"), turns[-1] if turns else None)
    return (c, position_markdown(v, k, len(rows), lang), chat_html(v, f.search, f.regex, lang), v["note"],
            gr.update(choices=turn_choices, value=last["path"] if last else None), last["text"] if last else "", str(v["row"]),
            shown_text(f, desk, v, rows))


def row_number(row) -> int | None:
    """The hidden row box's value as a row number (1-based). Anything else, which only a direct HTTP
    call can send, is no row: the handlers then answer as they do before a row is shown."""
    try:
        n = int(str(row).strip())
    except ValueError:
        return None
    return n if 1 <= n < 2**62 else None


def _index_of(rows, row) -> int | None:
    n = row_number(row)
    if n is None:
        return None
    hit = (rows == n).nonzero()[0]
    return int(hit[0]) if len(hit) else None


def show(gui, ds_id, *args):
    """Inputs: dataset id, the filters, current row, language. Outputs: the view (a filter changed: the
    current row stays if it still matches)."""
    *fs, row, lang = args
    return view(gui, ds_id, filters(*fs), row, lang)


def step(gui, by: int, ds_id, q, row, lang):
    """Inputs: dataset, the query box, current row, language. Previous (-1) / next (+1) among the matching rows."""
    return view(gui, ds_id, query(q), row, lang, step=by)


def show_row(gui, ds_id, q, row, lang):
    """The row just chosen (a finding clicked), if it matches the filters."""
    return view(gui, ds_id, query(q), row, lang, prefer=row_number(row))


def filter_choices(gui, ds_id, lang: str, current=(ALL, ALL, ALL)) -> tuple:
    """Outputs: the problem, language and duplicate dropdowns, offering what this version has (a
    value this version does not have goes back to "all": another dataset may have been chosen)."""
    if not ds_id:
        return only_all(lang)
    try:
        ch = choices(open_desk(gui.ws, ds_id))
    except DanluError:
        return only_all(lang)
    from core.data.issues import TITLES
    from webui.tabs.dataset_tab import kind_title
    problems = [(tr("rv.all", lang), ALL), (tr("rv.problem.none", lang), "none"), (tr("rv.problem.any", lang), "any")] + \
        [(f"{kind_title(c, TITLES.get(c, c), lang)} ({number(n, lang)})", c) for c, n in ch["problems"].items()]
    langs = [(tr("rv.all", lang), ALL)] + [(f"{lang_name(c, lang)} ({number(n, lang)})", c) for c, n in ch["langs"].items()]
    dups = [(tr("rv.all", lang), ALL), (f"{tr('rv.dup.any', lang)} ({number(ch['dup_rows'], lang)})", "any")] + \
        [(f"{tr('rv.dup.group', lang)} {g}", str(g)) for g in range(1, min(ch["dup_groups"], 200) + 1)]
    out = []
    for options, value in zip((problems, langs, dups), current):
        keep = value in {v for _, v in options}
        out.append(gr.update(choices=options, value=value if keep else ALL))
    return tuple(out)


def only_all(lang: str) -> tuple:
    """The problem, language and duplicate dropdowns with nothing to offer but "all", in `lang`."""
    return (gr.update(choices=[(tr("rv.all", lang), ALL)], value=ALL),) * 3


def fixed_choices(lang: str) -> tuple:
    """Outputs: the order, review-mark, bulk-mark and kind choices in `lang` (their values stay)."""
    return (gr.update(choices=[(tr(f"rv.sort.{s}", lang), s) for s in SORTS]),
            gr.update(choices=[(tr("rv.all", lang), ALL)] + [(tr(f"rv.mark.{m}", lang), m) for m in MARK_FILTERS]),
            gr.update(choices=[(tr(f"rv.mark.{m}", lang), m) for m in ("keep", "drop", "fix", "clear")]),
            gr.update(choices=[(tr(f"rv.kind.{k}", lang), k) for k in pii.KINDS]))


def open_tab(gui, ds_id, *args):
    """The tab opened or the language changed: every choice in the page's language, the view, the version lists."""
    *fs, row, lang = args
    ch = filter_choices(gui, ds_id, lang, (fs[2], fs[4], fs[5]))   # problem, language, duplicates
    for i, c in zip((2, 4, 5), ch):
        if isinstance(c, dict) and "value" in c:
            fs[i] = c["value"]
    return (*ch, *fixed_choices(lang), *view(gui, ds_id, filters(*fs), row, lang), *versions(gui, ds_id, lang))


def relabel(gui, ds_id, *args):
    """The language changed: the fixed choices in the new language; the rest again only if the desk has
    been shown (the query box is filled), so a language switch never reads a dataset nobody reviews."""
    *fs, row, q, lang = args
    if not q:  # the desk never shown: the three filters still offer only "all"
        return only_all(lang) + fixed_choices(lang) + (gr.skip(),) * (N_VIEW + 2)
    return open_tab(gui, ds_id, *fs, row, lang)


def versions(gui, ds_id, lang: str) -> tuple:
    """Outputs: the two version pickers of the diff (previous and current chosen)."""
    if not ds_id:
        return gr.skip(), gr.skip()
    try:
        info = D.get_dataset(gui.ws, ds_id)
    except DanluError:
        return gr.skip(), gr.skip()
    vs = info["versions"]
    ch = [(f"{tr('rv.version', lang)} {i}: {recorded_text(v, 'summary', lang)[:70]}", str(i)) for i, v in enumerate(vs)]
    return gr.update(choices=ch, value=str(max(0, len(vs) - 2))), gr.update(choices=ch, value=str(len(vs) - 1))


def _after_change(gui, ds_id, q, row, lang, message: str, prefer=None) -> tuple:
    """Outputs after a new version: message, view, the `dataset` setting (training's file), version lists.
    Every action's message is said in every language (i18n.Said): a language switch shows it again."""
    setting = str(D.training_path(gui.ws, ds_id))
    return (message, *view(gui, ds_id, query(q), row, lang, prefer=prefer), setting, *versions(gui, ds_id, lang))


def _fail(e: DanluError, lang: str) -> tuple:
    """Core's own title where it has one (the marks file cannot be imported), else "nothing was changed"
    (it said "Problems to fix before training"), a box named as the page names it (rv.note); a titled
    problem's place is a file's name, shown as it is."""
    title = e.title if isinstance(e, InputError) and e.title.code != "error.input" else None
    text = said_in_all(lambda code: problems_markdown(e.problems, code, "rv.not_done", title=title, labels="" if title else "rv.")
                       if isinstance(e, InputError) else f"⚠ {error_text(e, code)}", lang)
    return (text,) + (gr.skip(),) * (N_VIEW + 3)


def _only(key: str, lang: str) -> tuple:
    """A message that changes nothing else: the words of `key`."""
    return (said_in_all(lambda code: tr(key, code), lang),) + (gr.skip(),) * (N_VIEW + 3)


def _changed(gui, ds_id, q, row: int, lang: str) -> tuple:
    """Someone else marked or edited the row since this page showed it: nothing done, the row shown as it is now."""
    return _after_change(gui, ds_id, q, row, lang, said_in_all(lambda code: "⚠ " + tr("rv.changed_meanwhile", code, row=row), lang),
                         prefer=row)


def mark_one(gui, mark: str, ds_id, q, row, note, lang):
    """Keep / Drop / Needs fix for the row shown, with the note; then the next matching row."""
    row = row_number(row)
    if not ds_id or not row:
        return _only("rv.no_row" if ds_id else "rv.none", lang)
    try:
        with desk_lock(ds_id):  # checked and marked in one go: this page's next mark compares with this one
            desk = open_desk(gui.ws, ds_id)
            if changed_since_shown(desk, q, row):
                return _changed(gui, ds_id, q, row, lang)
            rows = desk.index.rows[select(desk, query(q))]
            k = _index_of(rows, row)
            nxt = int(rows[k + 1]) if k is not None and k + 1 < len(rows) else None
            res = mark_rows(gui.ws, ds_id, [row], mark, note=note or "")
            remember_own(open_desk(gui.ws, ds_id), q, row)
    except DanluError as e:
        return _fail(e, lang)
    msg = said_in_all(lambda code: "✓ " + (tr("rv.marked", code, row=row, mark=tr("rv.mark." + mark, code))
                                           if res["changed"] else tr("rv.unchanged", code)), lang)
    return _after_change(gui, ds_id, q, row, lang, msg, prefer=nxt if nxt is not None else row)


def mark_all(gui, ds_id, q, row, mark, lang):
    """Mark every row that matches the filters (notes stay as they are): the rows the view counted. When
    other rows match by now (another reviewer's mark or edit), nothing is marked and the view is shown again."""
    if not ds_id:
        return _only("rv.none", lang)
    if not isinstance(mark, str) or mark not in BULK_MARKS:  # a direct call's None cleared every mark
        marks = lambda code: ", ".join(tr(f"rv.mark.{m}", code) for m in BULK_MARKS)  # noqa: E731
        return (said_in_all(lambda code: "⚠ " + tr("rv.bad_mark", code, marks=marks(code)), lang),) + (gr.skip(),) * (N_VIEW + 3)
    try:
        with desk_lock(ds_id):
            desk = open_desk(gui.ws, ds_id)
            rows = desk.index.rows[select(desk, query(q))]
            shown = shown_of(q)
            if shown is None:
                return _only("rv.bulk_unseen", lang)
            if shown != rows_shown(rows):
                return _after_change(gui, ds_id, q, row, lang, said_in_all(
                    lambda code: "⚠ " + tr("rv.bulk_changed", code, then=shown["n"], now=len(rows)), lang), prefer=row_number(row))
            res = mark_rows(gui.ws, ds_id, [int(r) for r in rows], "" if mark == "clear" else mark, note=None)
    except DanluError as e:
        return _fail(e, lang)
    key = "rv.bulk_done" if res["changed"] else "rv.bulk_already"
    msg = said_in_all(lambda code: "✓ " + tr(key, code, n=len(rows), mark=tr("rv.mark." + mark, code)), lang)
    return _after_change(gui, ds_id, q, row, lang, msg)


def turn_text(gui, ds_id, row, path) -> str:
    """Inputs: dataset, row, the chosen turn. Outputs: its text, to edit."""
    row = row_number(row)
    if not (ds_id and row and path):
        return ""
    try:
        v = row_view(open_desk(gui.ws, ds_id), row)
    except DanluError:  # an id that names no dataset (a direct call): no text, as for no row
        return ""
    turns = (v or {}).get("conversation", {"turns": [], "answers": []})
    return next((t["text"] for t in turns["turns"] + [t for a in turns["answers"] for t in a["turns"]] if t["path"] == path), "")


def save_edit(gui, ds_id, q, row, path, text, lang):
    row = row_number(row)
    if not (ds_id and row and path):
        return _only("rv.no_row" if ds_id else "rv.none", lang)
    try:
        with desk_lock(ds_id):
            if changed_since_shown(open_desk(gui.ws, ds_id), q, row):
                return _changed(gui, ds_id, q, row, lang)
            res = edit_turn(gui.ws, ds_id, row, path, text or "")
            remember_own(open_desk(gui.ws, ds_id), q, row)
    except DanluError as e:
        return _fail(e, lang)
    msg = said_in_all(lambda code: "✓ " + tr("rv.saved", code, row=row) if res["changed"]
                      else tr("rv.unchanged", code), lang)
    return _after_change(gui, ds_id, q, row, lang, msg, prefer=row)


def undo(gui, ds_id, q, row, lang):
    if not ds_id:
        return _only("rv.none", lang)
    try:
        D.undo(gui.ws, ds_id)
    except DanluError as e:
        return _fail(e, lang)
    msg = said_in_all(lambda code: "↶ " + tr("rv.undone", code), lang)
    return _after_change(gui, ds_id, q, row, lang, msg, prefer=row_number(row))


# ---- sensitive data ------------------------------------------------------------------------------
_SCANS: dict = {}   # the last scan per dataset version and question: the language switch redraws it


def scan(gui, ds_id, kinds, names, lang):
    """Outputs: the summary, the findings table, the findings' ids (hidden, one per table row)."""
    if not ds_id:
        return tr("rv.none", lang), hits_frame(None, lang), ""
    try:
        chosen = tuple(kinds or pii.KINDS) + (("name",) if _names(names) else ())
        key = (ds_id, D.get_dataset(gui.ws, ds_id)["current_sha256"], chosen, tuple(_names(names)))
        found = _SCANS.get(key) or scan_dataset(gui.ws, ds_id, chosen, _names(names))
        _SCANS.clear()
        _SCANS[key] = found
    except DanluError as e:
        return f"⚠ {error_text(e, lang)}", hits_frame(None, lang), ""
    per = ", ".join(f"{tr('rv.kind.' + k, lang)} {number(n, lang)}" for k, n in sorted(found["counts"].items(), key=lambda kv: -kv[1]))
    head = tr("rv.scan_summary", lang, n=len(found["hits"]), r=found["rows"]) + (f": {per}" if per else "")
    return head, hits_frame(found, lang), "\n".join(h["id"] for h in found["hits"][:500])


def redraw_scan(gui, ds_id, kinds, names, ids, lang):
    """The language changed: the findings again, in the new language (only if a scan is shown; else
    the empty table's headers in the new language)."""
    if not ids:
        return gr.skip(), hits_frame(None, lang), gr.skip()
    return scan(gui, ds_id, kinds, names, lang)


def rescan(gui, ds_id, kinds, names, ids, lang):
    """The text changed (a redaction, an edit, an undo): a findings table on show is scanned again,
    so it lists what is left, not what was replaced; the chosen finding is let go (its place moved).
    Outputs: the summary, the table, the findings' ids, the chosen finding."""
    if not ids:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return scan(gui, ds_id, kinds, names, lang) + ("",)


def _names(text) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def pick_hit(ids: str, evt: gr.SelectData):
    """A click in the findings table: that finding's id and its row (shown next)."""
    idx = evt.index[0] if isinstance(evt.index, (list, tuple)) and evt.index else evt.index
    lines = (ids or "").splitlines()
    if type(idx) is not int or not 0 <= idx < len(lines):  # a direct call's index: -1 chose the last finding, "x" a 500
        return gr.skip(), gr.skip()
    hit = lines[idx]
    return hit, hit.split(":", 1)[0]


def redact_some(gui, how: str, ds_id, q, row, hit, kinds, names, lang):
    """Replace the chosen finding ("one"), every finding of the ticked kinds ("kinds"), or all."""
    if not ds_id:
        return _only("rv.none", lang)
    if how == "one" and not hit:
        return _only("rv.scan_first", lang)
    try:
        chosen = tuple(kinds or pii.KINDS) if how == "kinds" else pii.KINDS
        res = redact(gui.ws, ds_id, kinds=chosen + (("name",) if _names(names) else ()), names=_names(names),
                     hits=[hit] if how == "one" else None)
    except DanluError as e:
        return _fail(e, lang)
    msg = said_in_all(lambda code: "✓ " + tr("rv.redacted", code, c=res["result"]["changed"]) if res["changed"]
                      else tr("rv.unchanged", code), lang)
    return _after_change(gui, ds_id, q, row, lang, msg, prefer=row_number(hit.split(":", 1)[0] if how == "one" else row))


# ---- versions and shared work -------------------------------------------------------------------
def compare(gui, ds_id, a, b, lang: str) -> tuple[str, str]:
    """Inputs: dataset id, the two versions, language. Outputs: the comparison, and what it compared as
    JSON for a hidden box (the dataset, the versions and their files' hashes): a language switch draws
    the same comparison again from it (compare_again)."""
    compared = {"ds": ds_id or "", "a": a, "b": b}
    if not ds_id:
        return tr("rv.none", lang), json.dumps(compared)
    try:
        info = D.get_dataset(gui.ws, ds_id)
        d = diff_versions(gui.ws, ds_id, None if a in (None, "") else a, None if b in (None, "") else b)
    except DanluError as e:  # core checks the versions: a direct call may send any text as one
        return f"⚠ {error_text(e, lang)}", json.dumps(compared)
    fmt = open_desk(gui.ws, ds_id).index.fmt
    compared.update(a=d["a"], b=d["b"], sha=[info["versions"][d["a"]]["sha256"], info["versions"][d["b"]]["sha256"]])
    return diff_html(d, fmt, info["column_map"], lang), json.dumps(compared)


def compare_again(gui, compared: str, lang: str):
    """The language switch's answer for the comparison: compare() again with what it compared (its hidden
    box). Nothing compared yet, or versions that name other files now: the comparison is left as it is."""
    c = _compared(compared)
    if c is None or not _same_files(gui, c):
        return gr.skip()
    return compare(gui, c["ds"], c["a"], c["b"], lang)[0]


def _compared(text: str) -> dict | None:
    """What compare() compared, from the page's hidden box (anything may arrive): None unless it has that shape."""
    try:
        c = json.loads(text or "{}")
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past Python's limit
        return None
    def version(v) -> bool:
        return v is None or type(v) is int or isinstance(v, str) and (v == "" or v.isdecimal())
    ok = isinstance(c, dict) and isinstance(c.get("ds"), str) and version(c.get("a")) and version(c.get("b"))
    return c if ok else None


def _same_files(gui, c: dict) -> bool:
    """The version numbers compared still name the files compared (an Undo, then a new step, reuses one)."""
    if "sha" not in c:  # no comparison was drawn (no dataset, or versions refused): said again as it was
        return True
    try:
        versions = D.get_dataset(gui.ws, c["ds"])["versions"]
        return c["sha"] == [versions[int(c["a"])]["sha256"], versions[int(c["b"])]["sha256"]]
    except (DanluError, IndexError, TypeError, ValueError):
        return False


def export(gui, ds_id, lang: str | None = None):
    """Inputs: dataset id, language. Outputs: the marks as a CSV to download; an id that names no dataset
    (sent to the API) is said in the page's error box, as the Dataset tab's Download says it."""
    if not ds_id:
        return None
    try:
        info = D.get_dataset(gui.ws, ds_id)
        name = info["display_name"].rsplit(".", 1)[0]
        return str(export_marks(gui.ws, ds_id, downloads_dir(gui.ws) / f"{name}-v{info['version']}-marks.csv"))
    except DanluError as e:
        raise gr.Error(html.escape(error_text(e, lang), quote=False), print_exception=False) from None


def import_csv(gui, ds_id, q, row, path, theirs, lang):
    """Inputs: the query box, row, the uploaded CSV, take-theirs, language. Outputs: what happened (conflicts
    and rows not found listed), the view, the `dataset` setting, the version lists."""
    if not ds_id or not path:
        return _only("rv.none", lang)
    try:
        res = import_marks(gui.ws, ds_id, path, prefer="theirs" if theirs else "mine", origin=trust.BROWSER)
    except DanluError as e:
        return _fail(e, lang)
    return _after_change(gui, ds_id, q, row, lang, said_in_all(lambda code: imported_markdown(res, theirs, code), lang))
