"""A record as the chat the model will learn, for reading and editing one turn in place.

    conversation(record, "messages", {})
    -> {"turns": [{"role": "user", "text": "...", "path": "messages[0].content", "editable": True}, ...],
        "answers": []}
    conversation({"prompt": "Q", "chosen": "A", "rejected": "B"}, ...)
    -> {"turns": [user Q], "answers": [{"label": "chosen", "turns": [...]}, {"label": "rejected", "turns": [...]}]}
    set_path(record, "messages[2].content", "new text")      # the edit, in the user's own column names

Preference pairs (a prompt with a `chosen` and a `rejected` answer, as TRL's DPO data) show both
answers whatever the format says; other formats read as core/data/formats.py trains them.
"""
from __future__ import annotations

import re

from core.data.formats import SHAREGPT_ROLES

PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _turn(role: str, text, path: str) -> dict:
    editable = type(text) is str
    if type(text) is list:  # OpenAI content parts: their text parts, read only
        text = "".join(p.get("text", "") for p in text if type(p) is dict)
    return {"role": role, "text": text if type(text) is str else "" if text is None else str(text), "path": path,
            "editable": editable}


def _turns_of(value, path: str, default_role: str) -> list[dict]:
    """A string (one turn) or a list of {"role", "content"} / {"from", "value"} turns."""
    if type(value) is str or value is None:
        return [_turn(default_role, value, path)]
    if type(value) is dict and ("from" in value or "value" in value):  # one ShareGPT turn (a pair's answer)
        role = SHAREGPT_ROLES.get(str(value.get("from", "")).lower(), str(value.get("from", "?")))
        return [_turn(role, value.get("value"), f"{path}.value")]
    if type(value) is dict and ("role" in value or "content" in value):
        return [_turn(str(value.get("role", "?")), value.get("content"), f"{path}.content")]
    if type(value) is not list:
        return [_turn(default_role, str(value), path)]
    out = []
    for i, t in enumerate(value):
        if type(t) is not dict:
            out.append({"role": "?", "text": str(t), "path": f"{path}[{i}]", "editable": False})
            continue
        if "from" in t or "value" in t:
            role = SHAREGPT_ROLES.get(str(t.get("from", "")).lower(), str(t.get("from", "?")))
            out.append(_turn(role, t.get("value"), f"{path}[{i}].value"))
        else:
            out.append(_turn(str(t.get("role", "?")), t.get("content"), f"{path}[{i}].content"))
    return out


def conversation(rec, fmt: str | None, column_map: dict | None = None) -> dict:
    cmap = column_map or {}
    c = lambda n: cmap.get(n, n)  # noqa: E731
    if type(rec) is not dict:
        return {"turns": [{"role": "?", "text": str(rec), "path": "", "editable": False}], "answers": []}
    if c("chosen") in rec and c("rejected") in rec:
        prompt_key = next((k for k in (c("prompt"), "prompt", c("conversations"), c("messages"), "messages", "conversations",
                                       "question") if k in rec), None)
        turns = _turns_of(rec[prompt_key], prompt_key, "user") if prompt_key else []
        if type(rec.get(c("system"))) is str and rec[c("system")]:
            turns.insert(0, _turn("system", rec[c("system")], c("system")))
        answers = [{"label": k, "turns": _turns_of(rec[c(k)], c(k), "assistant")} for k in ("chosen", "rejected")]
        return {"turns": turns, "answers": answers}
    if fmt in ("messages", "sharegpt"):
        key = c("messages" if fmt == "messages" else "conversations")
        return {"turns": _turns_of(rec.get(key), key, "user"), "answers": []}
    fields = {"alpaca": (("system", "system"), ("instruction", "user"), ("input", "user"), ("output", "assistant")),
              "prompt_completion": (("prompt", "user"), ("completion", "assistant")),
              "text": (("text", "text"),)}.get(fmt or "")
    if fields:
        turns = [_turn(role, rec.get(c(name)), c(name)) for name, role in fields
                 if c(name) in rec and (rec.get(c(name)) or name not in ("system", "input"))]
        return {"turns": turns, "answers": []}
    return {"turns": [_turn(str(k), v, str(k)) for k, v in rec.items() if type(v) is str], "answers": []}


def parse_path(path: str) -> list:
    parts = []
    for index, name in PATH_PART.findall(path or ""):
        parts.append(int(index) if index else name)
    return parts


def set_path(rec, path: str, text: str) -> None:
    """Replace the text at `path` (raises KeyError/IndexError/TypeError when the path is not in the record)."""
    parts = parse_path(path)
    if not parts:
        raise KeyError(path)
    target = rec
    for p in parts[:-1]:
        target = target[p]
    if type(target[parts[-1]]) is not str and target[parts[-1]] is not None:
        raise TypeError(f"{path} is not text")
    target[parts[-1]] = text
