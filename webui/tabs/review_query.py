"""The Review tab's hidden query box: the filters the view shown used, as JSON (what the actions read),
and the row it showed as it was then ("seen": its mark, note and content's fingerprint).

Two reviewers may have the same row on their screens: a Keep with a note from one, then a Drop from
the other who still saw the row unmarked, replaced the first one's mark without a word. A mark or an
edit now first compares the row with what its page showed, and refuses when someone else changed it.
"""
from __future__ import annotations

import dataclasses
import json

from core.data.review import Filters
from core.data.review_actions import fingerprint


def query(text: str) -> Filters:
    """The filters a view wrote to the hidden query box."""
    try:
        fields = json.loads(text) if text else {}
        if isinstance(fields, dict):
            fields.pop("seen", None)
        return Filters(**fields)
    except (TypeError, ValueError, RecursionError):  # a hidden box: anything may arrive, "[[[[..." too deep included
        return Filters()


def query_text(f: Filters) -> str:
    """The hidden query box's JSON of filters that may not be usable: a whole number too long for JSON
    (5,000 digits from a direct call) is kept as text, which the next select() refuses as this one did."""
    fields = {k: "too large" if type(v) is int and abs(v) > 10**18 else v for k, v in dataclasses.asdict(f).items()}
    return json.dumps(fields)


def shown_text(f: Filters, desk, v: dict) -> str:
    """The query box of a view showing row view `v` (core.data.review_actions.row_view) of `desk`."""
    seen = {"row": v["row"], "mark": v["mark"], "note": v["note"], "fp": fingerprint(desk.index.raw[v["position"]])}
    return json.dumps({**dataclasses.asdict(f), "seen": seen})


def changed_since_shown(desk, q: str, row: int) -> bool:
    """True when `row` is no longer what the page that sent `q` showed (another session marked or edited
    it since). A box without what was seen (a direct call, another row) is not checked."""
    try:
        seen = json.loads(q).get("seen")
    except (AttributeError, TypeError, ValueError, RecursionError):
        return False
    if not isinstance(seen, dict) or seen.get("row") != row:
        return False
    i = desk.index.position(row)
    mark = desk.marks.get(row, {})
    now = {"mark": mark.get("mark", ""), "note": mark.get("note", ""), "fp": fingerprint(desk.index.raw[i]) if i is not None else ""}
    return any(seen.get(k) != now[k] for k in now)
