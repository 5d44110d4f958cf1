"""The Dataset tab's editable grid: a page of rows, each record as JSON text, and saving what was edited
there (each changed row one `edit` operation of core.data: a new version, Undo takes it back).
"""
from __future__ import annotations

import json

import pandas as pd

from core import data as D
from core import trust
from core.config import as_number, whole
from core.data.readers import make_decoder
from core.errors import DanluError, InputError
from webui.fields import refused
from webui.i18n import error_text, said_in_all, tr
from webui.numbers import ROWS
from webui.tabs.hyperparams_tab import problems_markdown

GRID_COLUMNS = ("row", "line", "record")
PAGE = 50


def grid(gui, ds_id: str, start, lang: str) -> pd.DataFrame:
    """Inputs: dataset id, first row, language. Outputs: a page of rows, each record as JSON text."""
    cols = [tr("ds.col." + c, lang) for c in GRID_COLUMNS]
    if not ds_id:
        return pd.DataFrame(columns=cols)
    try:
        first = first_row(start, lang)
    except InputError as e:  # only the grid answers here: the page's error box, in its language
        raise refused(e, lang) from None
    try:
        rows = D.dataset_rows(gui.ws, ds_id, start=first, count=PAGE)
    except DanluError:  # an id that names no dataset (sent to the API): no rows; the check beside it says why
        return pd.DataFrame(columns=cols)
    return pd.DataFrame([[r["row"], r["line"], json.dumps(r["record"], ensure_ascii=False)] for r in rows], columns=cols)


def first_row(start, lang: str) -> int:
    """The grid's first row from its box (empty, or 0 as the page reads an empty box: 1); anything else it
    sent that is no row number (a direct HTTP call: -1, NaN, text, 5,000 digits) is InputError in words."""
    return whole(start or None, tr("ds.grid_start", lang), 1, ROWS, default=1)


def save_edits(gui, ds_id: str, start, edited: pd.DataFrame, lang: str) -> str:
    """Inputs: dataset id, first row, the grid as edited, language. Outputs: what was saved. Each changed
    row becomes an `edit` operation (a new version; Undo takes it back). In every language (i18n.Said)."""
    if not ds_id or edited is None or edited.empty:
        return said_in_all(lambda code: tr("ds.none", code), lang)
    try:
        first = first_row(start, lang)
    except InputError as e:
        return said_in_all(lambda code: problems_markdown(e.problems, code), lang)
    try:
        before = {r["row"]: r["record"] for r in D.dataset_rows(gui.ws, ds_id, start=first, count=PAGE)}
    except DanluError as e:  # an id that names no dataset (sent to the API)
        return said_in_all(lambda code: f"⚠ {error_text(e, code)}", lang)
    done, problems = [], []  # each problem: its words in a language code
    for row_no, text in zip(edited.iloc[:, 0], edited.iloc[:, 2]):
        seen: list = []
        try:  # read as a row of the file is: NaN, a key twice, 5,000 digits noted ("[[[[..." too deep is malformed)
            record = make_decoder(seen).decode(text)
        except (TypeError, json.JSONDecodeError) as e:
            problems.append(lambda code, n=row_no, e=e: f"{tr('ds.col.row', code)} {n}: {tr('ds.bad_json', code)} ({e})")
            continue
        row = as_number(row_no, int)  # a row number not of this page (anything, sent to the API) is no edit
        if row in before and (seen or record != before[row]):
            try:  # the text: core's edit reads it the same way and says what `seen` noted, in words
                D.apply_op(gui.ws, ds_id, "edit", origin=trust.BROWSER, row=row, record=text)
                done.append(str(row_no))
            except DanluError as e:
                problems.append(lambda code, n=row_no, e=e: f"{tr('ds.col.row', code)} {n}: {error_text(e, code)}")

    def words(code):
        text = f"✓ {tr('ds.saved_rows', code)}: {', '.join(done)}" if done else tr("ds.no_edits", code)
        return "\n\n".join([text] + [f"⚠ {p(code)}" for p in problems])
    return said_in_all(words, lang)
