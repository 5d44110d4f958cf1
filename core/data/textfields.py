"""Where the text of a record is, in the user's own column names: what cleaning reads and edits.

    for container, key, role in text_slots(record, "alpaca", column_map): container[key] = container[key].strip()
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata


def text_slots(rec, fmt: str, column_map: dict, role: str = "all"):
    """(container, key, role) for every text value of a record, in its own column names."""
    if type(rec) is not dict:
        return
    c = lambda n: column_map.get(n, n)  # noqa: E731
    if fmt in ("messages", "sharegpt"):
        turns = rec.get(c("messages" if fmt == "messages" else "conversations"))
        if type(turns) is list:
            yield from _turn_slots(turns, role)
        return
    if fmt == "preference":
        yield from _pair_slots(rec, c, role)
        return
    names = {"alpaca": ("system", "instruction", "input", "output"), "prompt_completion": ("prompt", "completion"),
             "text": ("text",)}[fmt]
    roles = {"system": "system", "instruction": "user", "input": "user", "output": "assistant", "prompt": "user",
             "completion": "assistant", "text": "assistant"}
    for n in names:
        if type(rec.get(c(n))) is str and role in ("all", roles[n]):
            yield rec, c(n), roles[n]


def _pair_slots(rec: dict, c, role: str):
    """A preference pair: the system field, the prompt (text, one turn or turns), then each answer."""
    from core.data.pairs import PROMPT_KEYS, SIDES
    if type(rec.get(c("system"))) is str and role in ("all", "system"):
        yield rec, c("system"), "system"
    for name, default in [(n, "user") for n in PROMPT_KEYS] + [(n, "assistant") for n in SIDES]:
        value = rec.get(c(name))
        if type(value) is str:
            if role in ("all", default):
                yield rec, c(name), default
            continue
        yield from _turn_slots([value] if type(value) is dict else value if type(value) is list else [], role)


def _turn_slots(turns: list, role: str):
    """(turn, key, role) of every turn with text whose role is `role` (or any, "all")."""
    for t in turns:
        if type(t) is not dict:
            continue
        key = "value" if "value" in t or "from" in t else "content"
        r = turn_role(t)
        if type(t.get(key)) is str and role in ("all", r):
            yield t, key, r


def side_slots(rec, column_map: dict, side: str) -> list:
    """(container, key, role) of one answer of a pair, in the user's column names (its assistant turns)."""
    c = lambda n: column_map.get(n, n)  # noqa: E731
    value = rec.get(c(side)) if type(rec) is dict else None
    if type(value) is str:
        return [(rec, c(side), "assistant")]
    return list(_turn_slots([value] if type(value) is dict else value if type(value) is list else [], "assistant"))


def turn_role(turn: dict) -> str | None:
    from core.data.formats import SHAREGPT_ROLES
    if "from" in turn:
        return SHAREGPT_ROLES.get(str(turn["from"]).lower())
    return turn.get("role")


def answer_slot(rec, fmt: str, column_map: dict):
    """The last answer of a record (what truncate-long shortens)."""
    slots = [s for s in text_slots(rec, fmt, column_map) if s[2] == "assistant"]
    return slots[-1] if slots else None


_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalised(rec, fmt: str, column_map: dict) -> bytes:
    """Text for near-duplicate detection: NFKC, case-folded, punctuation and spacing removed."""
    parts = [v[k] for v, k, _ in text_slots(rec, fmt, column_map)] if type(rec) is dict else [json.dumps(rec)]
    text = "\x1f".join(_PUNCT.sub(" ", unicodedata.normalize("NFKC", p).casefold()).strip() for p in parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def canonical(rec) -> bytes:
    data = json.dumps(rec, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).digest()
