"""The Review tab's hidden query box: the filters the view shown used, as JSON (what the actions read),
the rows it showed as matching ("shown": how many, and their fingerprint), and the row it showed as it
was then ("seen": its mark, note and content's fingerprint, and the view's own token, "page").

Two reviewers may have the same row on their screens: a Keep with a note from one, then a Drop from
the other who still saw the row unmarked, replaced the first one's mark without a word. A mark or an
edit now first compares the row with what its page showed, and refuses when someone else changed it.
A page's own marks are not someone else's: K then D pressed before the page had drawn K's answer both
send the view K was pressed on, and D was refused as "changed in another window". The view's token
tells them apart: what a change made through a view left of its row is remembered under that view's
token (another page's view has its own), and a later change sent from the same view finds the row as
its own change left it.

"Mark every matching row" marks the rows the view counted, not whatever matches when it is clicked:
another reviewer's mark or edit since (or this page's own) can make other rows match ("unreviewed",
a search), and the bulk mark would take rows nobody on this page saw counted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import threading
from collections import OrderedDict

import numpy as np

from core.data.review import Filters
from core.data.review_actions import fingerprint

_OWN: OrderedDict = OrderedDict()   # a view's token -> (dataset id, row, the row as that view's last change left it)
_OWN_MAX = 2000
_LOCK = threading.Lock()
_DESKS: dict[str, threading.Lock] = {}


def desk_lock(ds_id: str) -> threading.Lock:
    """One dataset's check-then-change lock: K and D of one page reach the server as two requests that may
    run at once; the second must compare with what the first did, not with the row before it."""
    with _LOCK:
        return _DESKS.setdefault(str(ds_id), threading.Lock())


def query(text: str) -> Filters:
    """The filters a view wrote to the hidden query box."""
    try:
        fields = json.loads(text) if text else {}
        if isinstance(fields, dict):
            fields.pop("seen", None)
            fields.pop("shown", None)
        return Filters(**fields)
    except (TypeError, ValueError, RecursionError):  # a hidden box: anything may arrive, "[[[[..." too deep included
        return Filters()


def query_text(f: Filters) -> str:
    """The hidden query box's JSON of filters that may not be usable: a whole number too long for JSON
    (5,000 digits from a direct call) is kept as text, which the next select() refuses as this one did."""
    fields = {k: "too large" if type(v) is int and abs(v) > 10**18 else v for k, v in dataclasses.asdict(f).items()}
    return json.dumps(fields)


def rows_shown(rows) -> dict:
    """What a view showed as matching: how many rows, and a fingerprint of which ones."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))  # which rows, in any order (a longest-first view re-sorts after an edit)
    return {"n": int(len(rows)), "fp": hashlib.sha256(rows.tobytes()).hexdigest()[:16]}


def matched_text(f: Filters, rows) -> str:
    """The query box of a view that matched `rows` and shows none of them (none matched)."""
    return json.dumps({**dataclasses.asdict(f), "shown": rows_shown(rows)})


def shown_text(f: Filters, desk, v: dict, rows) -> str:
    """The query box of a view showing row view `v` (core.data.review_actions.row_view) of `desk`, among `rows`."""
    seen = {"row": v["row"], **_state(desk, v["row"]), "page": secrets.token_hex(8)}
    return json.dumps({**dataclasses.asdict(f), "seen": seen, "shown": rows_shown(rows)})


def shown_of(q: str) -> dict | None:
    """What the view that wrote `q` showed as matching (None: a box no view wrote, a direct call's)."""
    shown = _field(q, "shown")
    return shown if isinstance(shown, dict) and type(shown.get("n")) is int else None


def _field(q: str, key: str):
    try:
        box = json.loads(q)
    except (TypeError, ValueError, RecursionError):
        return None
    return box.get(key) if isinstance(box, dict) else None


def _state(desk, row: int) -> dict:
    i = desk.index.position(row)
    mark = desk.marks.get(row, {})
    return {"mark": mark.get("mark", ""), "note": mark.get("note", ""), "fp": fingerprint(desk.index.raw[i]) if i is not None else ""}


def _seen(q: str, row: int) -> tuple[dict, str | None] | None:
    seen = _field(q, "seen")
    if not isinstance(seen, dict) or seen.get("row") != row:
        return None
    page = seen.get("page")
    return seen, page if isinstance(page, str) else None


def changed_since_shown(desk, q: str, row: int) -> bool:
    """True when `row` is no longer what the page that sent `q` showed, and not as that view's own last
    change left it (another session marked or edited it since). A box without what was seen (a direct
    call, another row) is not checked."""
    got = _seen(q, row)
    if got is None:
        return False
    (seen, page), now = got, _state(desk, row)
    if all(seen.get(k) == now[k] for k in now):
        return False
    with _LOCK:
        own = _OWN.get(page) if page else None
    return own != (desk.info["id"], row, now)


def remember_own(desk, q: str, row: int) -> None:
    """After a change of `row` sent from the view that wrote `q`: the row as it now is (`desk`, opened
    after the change) is that view's own doing."""
    got = _seen(q, row)
    if got is None or got[1] is None:
        return
    with _LOCK:
        _OWN[got[1]] = (desk.info["id"], row, _state(desk, row))
        _OWN.move_to_end(got[1])
        while len(_OWN) > _OWN_MAX:
            _OWN.popitem(last=False)
