"""The five dataset formats and how each record becomes one training example.

    messages           {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", ...}]}
    sharegpt           {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", ...}]}
    alpaca             {"instruction": "...", "input": "...", "output": "..."}
    prompt_completion  {"prompt": "...", "completion": "..."}
    text               {"text": "..."}

Every format except `text` becomes {"messages": [...]}: the training recipe then renders it with the
model's chat template and learns only the assistant turns.
"""
from __future__ import annotations

from core.errors import Problem

FORMAT_NAMES = ("messages", "sharegpt", "alpaca", "prompt_completion", "text")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
                  "system": "system"}
ROLES = ("system", "user", "assistant")


def _col(column_map: dict | None, name: str) -> str:
    return (column_map or {}).get(name, name)


def detect_format(record: dict, column_map: dict | None = None) -> str | None:
    """Name the format of one record from its keys (after column mapping), or None."""
    if not isinstance(record, dict):
        return None
    has = lambda k: _col(column_map, k) in record  # noqa: E731
    if has("messages"):
        return "messages"
    if has("conversations"):
        return "sharegpt"
    if has("instruction") and has("output"):
        return "alpaca"
    if has("prompt") and has("completion"):
        return "prompt_completion"
    if has("text"):
        return "text"
    return None


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def to_example(record: dict, fmt: str, column_map: dict | None = None, where: str = "") -> tuple[dict | None, list[Problem]]:
    """Convert one record; return (example, problems). example is None when the record is unusable."""
    problems: list[Problem] = []
    c = lambda k: _col(column_map, k)  # noqa: E731
    if fmt == "text":
        t = _text(record.get(c("text")))
        if t is None or not t.strip():
            return None, [Problem(f"{where} {c('text')}".strip(), "text is missing or empty", "remove the row or fill it in")]
        return {"text": t}, []
    if fmt == "prompt_completion":
        p, a = _text(record.get(c("prompt"))), _text(record.get(c("completion")))
        for key, val in ((c("prompt"), p), (c("completion"), a)):
            if val is None or not val.strip():
                problems.append(Problem(f"{where} {key}".strip(), "is missing, empty or not text", "fill it in or remove the row"))
        if problems:
            return None, problems
        msgs = [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
    elif fmt == "alpaca":
        ins, inp, out = record.get(c("instruction")), record.get(c("input"), ""), record.get(c("output"))
        sysmsg = record.get(c("system"))
        if not isinstance(ins, str) or not ins.strip():
            problems.append(Problem(f"{where} {c('instruction')}".strip(), "is missing, empty or not text", "fill it in or remove the row"))
        if not isinstance(out, str) or not out.strip():
            problems.append(Problem(f"{where} {c('output')}".strip(), "is missing, empty or not text", "fill it in or remove the row"))
        if inp is None:
            inp = ""
        if not isinstance(inp, str):
            problems.append(Problem(f"{where} {c('input')}".strip(), f"must be text, got {type(inp).__name__}", "write it as text or leave it empty"))
        if problems:
            return None, problems
        user = f"{ins.strip()}\n\n{inp.strip()}" if inp.strip() else ins.strip()
        msgs = ([{"role": "system", "content": sysmsg}] if isinstance(sysmsg, str) and sysmsg.strip() else []) + \
            [{"role": "user", "content": user}, {"role": "assistant", "content": out}]
    elif fmt in ("messages", "sharegpt"):
        key = c("messages") if fmt == "messages" else c("conversations")
        turns = record.get(key)
        if not isinstance(turns, list) or not turns:
            return None, [Problem(f"{where} {key}".strip(), "must be a non-empty list of turns", "see the format examples in the README")]
        msgs = []
        for i, t in enumerate(turns):
            path = f"{where} {key}[{i}]".strip()
            if not isinstance(t, dict):
                problems.append(Problem(path, f"a turn must be an object, got {type(t).__name__}"))
                continue
            if fmt == "messages":
                role, content = t.get("role"), t.get("content")
                if isinstance(content, list):  # OpenAI parts: keep text parts only
                    parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
                    content = "".join(x for x in parts if isinstance(x, str)) if parts else None
                if role not in ROLES:
                    problems.append(Problem(f"{path}.role", f"unknown role {role!r}", "use system, user or assistant"))
                    continue
            else:
                raw = t.get("from")
                role, content = SHAREGPT_ROLES.get(str(raw).lower()) if raw is not None else None, t.get("value")
                if role is None:
                    problems.append(Problem(f"{path}.from", f"unknown speaker {raw!r}", "use human, gpt or system"))
                    continue
            if not isinstance(content, str) or not content.strip():
                problems.append(Problem(f"{path}.{'content' if fmt == 'messages' else 'value'}",
                                        "text is missing or empty", "fill it in or remove the turn"))
                continue
            msgs.append({"role": role, "content": content})
        problems += check_turn_order(msgs, where)
        if problems:
            return None, problems
    else:
        return None, [Problem(where, f"unknown format {fmt!r}", f"use one of {', '.join(FORMAT_NAMES)}")]
    return {"messages": msgs}, []


def check_turn_order(msgs: list[dict], where: str = "") -> list[Problem]:
    """After an optional system message, user and assistant alternate; the last turn is the assistant's."""
    problems = []
    body = msgs[1:] if msgs and msgs[0]["role"] == "system" else msgs
    for i, m in enumerate(body):
        if m["role"] == "system":
            problems.append(Problem(f"{where} turn {i + 1}".strip(), "a system message may only come first",
                                    "move it to the start or merge it into the user message"))
            return problems
        expected = "user" if i % 2 == 0 else "assistant"
        if m["role"] != expected:
            problems.append(Problem(f"{where} turn {i + 1}".strip(),
                                    f"two {m['role']} messages in a row" if i and body[i - 1]["role"] == m["role"]
                                    else f"expected a {expected} message, got {m['role']}",
                                    "user and assistant must take turns; add the missing reply or merge the two"))
            return problems
    if not body:
        problems.append(Problem(where, "no user or assistant messages", "add a user question and an assistant answer"))
    elif body[-1]["role"] != "assistant":
        problems.append(Problem(where, "the last message is not the assistant's", "end each conversation with the answer to learn"))
    return problems
