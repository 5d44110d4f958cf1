"""The five dataset formats, how each record is checked, and how it becomes one training example.

    messages           {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", ...}]}
    sharegpt           {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", ...}]}
    alpaca             {"instruction": "...", "input": "...", "output": "..."}   (+ optional "system")
    prompt_completion  {"prompt": "...", "completion": "..."}
    text               {"text": "..."}

Every format except `text` becomes {"messages": [...]}: the training recipe renders it with the
model's chat template and learns only the assistant turns. `Schema(fmt, column_map).check(record)`
returns the example and every problem of the record at once, each with its field path
(`messages[2].content`). It runs once per row of files with millions of rows, so the happy path
builds no strings.
"""
from __future__ import annotations

import re

from core.errors import Problem

FORMAT_NAMES = ("messages", "sharegpt", "alpaca", "prompt_completion", "text")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
                  "system": "system"}
ROLES = ("system", "user", "assistant")
_ROLESET = frozenset(ROLES)
# The fields each format reads, by their expected names (column_map maps them to the user's names).
FIELDS = {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ("instruction", "input", "output", "system"),
          "prompt_completion": ("prompt", "completion"), "text": ("text",)}
REQUIRED = {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ("instruction", "output"),
            "prompt_completion": ("prompt", "completion"), "text": ("text",)}
# Column names people use for the same thing; used to suggest (and, in auto mode, apply) a mapping.
SYNONYMS = {
    "prompt": ("question", "query", "q", "user", "human", "ask", "problem", "input_text", "source", "request"),
    "completion": ("answer", "response", "a", "reply", "assistant", "gpt", "solution", "target", "output_text",
                   "answers", "chosen"),
    "messages": ("conversation", "chat", "dialogue", "dialog", "turns"),
    "conversations": ("conversation", "dialogue", "dialog", "chat", "messages"),
    "instruction": ("question", "prompt", "task", "query", "instructions"),
    "output": ("answer", "response", "completion", "output_text", "target", "reply"),
    "text": ("content", "document", "body", "passage", "article", "sentence"),
}
# Found in text values: C0/C1 controls and lone surrogates, and the special tokens of common chat
# templates, which the tokenizer would read as control tokens. Two patterns, each behind a cheap
# C-level test (isprintable, `in`): one alternation regex over every string cost 4 us a string.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
SPECIAL = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|</s>|<s>|\[/?INST\]|<(?:start|end)_of_turn>")
_HARD_BAD = re.compile(r"[\x00\ud800-\udfff]")


def kind_of(value) -> str:
    """A type name a non-programmer recognises."""
    if value is None:
        return "null (empty)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "binary data"
    return type(value).__name__


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


def guess_column_map(columns, fmt: str | None = None) -> tuple[str | None, dict]:
    """For columns with other names (question/answer): the format and mapping they most likely
    mean. With `fmt`, only a mapping for that format (for any missing required field)."""
    lower = {str(c).strip().lower(): c for c in columns}

    def find(name):
        for alias in (name,) + SYNONYMS.get(name, ()):
            if alias in lower:
                return lower[alias]
        return None
    candidates = [(fmt, REQUIRED[fmt])] if fmt else [("messages", ("messages",)), ("prompt_completion", ("prompt", "completion")),
                                                     ("text", ("text",))]
    for name, needs in candidates:
        found = {n: find(n) for n in needs}
        if all(found.values()):
            return name, {n: c for n, c in found.items() if c != n}
    return None, {}


class Schema:
    """The checks of one format with one column mapping. `check(record)` -> (example, issues)
    where each issue is a tuple (code, field, message, hint, value)."""

    def __init__(self, fmt: str, column_map: dict | None = None):
        if fmt not in FORMAT_NAMES:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self.column_map = dict(column_map or {})
        self.key = {name: _col(self.column_map, name) for name in FIELDS[fmt]}
        self.check = getattr(self, f"_check_{fmt}")

    # --- shared pieces --------------------------------------------------------------------
    def _missing(self, rec: dict, name: str, issues: list) -> None:
        key = self.key[name]
        other = detect_format(rec)
        if other and other != self.fmt:
            hint = (f"this record looks like {other}; a file must use one format — fix this row, or choose "
                    f"the {other} format if most rows look like this")
        else:
            hint = f"add a \"{key}\" field" + (f" or map your column to it (column_map {name}: YOUR_COLUMN)" if key == name else "")
        issues.append(("missing_field", key, f"no \"{key}\" field (found: {', '.join(map(str, list(rec)[:8])) or 'nothing'})",
                       hint, None))

    def _text(self, value, field: str, issues: list, required: bool = True) -> bool:
        """Check one text value; True when it is usable text."""
        if type(value) is str:
            if not value or value.isspace():
                if required:
                    issues.append(("empty_text", field, "is empty" if not value else "is only whitespace",
                                   "write the text, or remove the row (cleaning: drop empty rows)", value))
                    return False
                return True
            if (not value.isprintable() or "<" in value or "[" in value) and self._scan(value, field, issues):
                return False
            return True
        if value is None and not required:
            return True
        if value is None:
            issues.append(("empty_text", field, "is null (empty)", "write the text, or remove the row", None))
        else:
            hint = f"write it as text in quotes, e.g. \"{value}\"" if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else "this field must hold text"
            issues.append(("wrong_type", field, f"must be text, got {kind_of(value)}", hint, value))
        return False

    @staticmethod
    def _scan(value: str, field: str, issues: list) -> bool:
        """Characters that break training (NUL, lone surrogates: errors, returns True) or may
        surprise (control characters, special tokens: warnings)."""
        hard = None
        m = CONTROL.search(value)
        if m is not None:
            hard = _HARD_BAD.search(value)
            if hard is not None:
                what = "a NUL character" if hard.group() == "\x00" else "a broken character (lone surrogate)"
                issues.append(("bad_chars", field, f"contains {what} at position {hard.start() + 1}",
                               "remove it; the text cannot be encoded for training",
                               value[max(0, hard.start() - 20):hard.start() + 20]))
            else:
                issues.append(("control_chars", field, f"contains the invisible control character U+{ord(m.group()):04X} "
                               f"at position {m.start() + 1}",
                               "remove it unless it is intended (often left by copy-paste or a wrong encoding)",
                               value[max(0, m.start() - 20):m.start() + 20]))
        m = SPECIAL.search(value) if "<" in value or "[" in value else None
        if m is not None:
            issues.append(("special_tokens", field, f"contains {m.group()!r}, which chat templates use as a control token",
                           "remove it, or make sure it is meant as text; it may end turns early", m.group()))
        return hard is not None

    # --- formats --------------------------------------------------------------------------
    def _check_text(self, rec: dict, build: bool = True):
        key = self.key["text"]
        issues: list = []
        if key not in rec:
            self._missing(rec, "text", issues)
            return None, issues
        t = rec[key]
        if not self._text(t, key, issues):
            return None, issues
        return ({"text": t} if build else True), issues

    def _check_prompt_completion(self, rec: dict, build: bool = True):
        issues: list = []
        kp, kc = self.key["prompt"], self.key["completion"]
        ok = True
        for name, key in (("prompt", kp), ("completion", kc)):
            if key not in rec:
                self._missing(rec, name, issues)
                ok = False
            elif not self._text(rec[key], key, issues):
                ok = False
        if not ok:
            return None, issues
        if not build:
            return True, issues
        return {"messages": [{"role": "user", "content": rec[kp]}, {"role": "assistant", "content": rec[kc]}]}, issues

    def _check_alpaca(self, rec: dict, build: bool = True):
        issues: list = []
        k = self.key
        ok = True
        for name in ("instruction", "output"):
            if k[name] not in rec:
                self._missing(rec, name, issues)
                ok = False
            elif not self._text(rec[k[name]], k[name], issues):
                ok = False
        inp, sysmsg = rec.get(k["input"]), rec.get(k["system"])
        ok = self._text(inp, k["input"], issues, required=False) and ok
        ok = self._text(sysmsg, k["system"], issues, required=False) and ok
        if not ok:
            return None, issues
        if not build:
            return True, issues
        ins, out = rec[k["instruction"]], rec[k["output"]]
        user = f"{ins.strip()}\n\n{inp.strip()}" if isinstance(inp, str) and inp.strip() else ins.strip()
        msgs = ([{"role": "system", "content": sysmsg}] if isinstance(sysmsg, str) and sysmsg.strip() else []) + \
            [{"role": "user", "content": user}, {"role": "assistant", "content": out}]
        return {"messages": msgs}, issues

    def _check_messages(self, rec: dict, build: bool = True):
        # Fast path for the common, clean row; anything unusual goes to _check_turns, which
        # finds and words every problem (this runs a million times on big files).
        turns = rec.get(self.key["messages"])
        if type(turns) is list and turns:
            roles = []
            for t in turns:
                if type(t) is not dict:
                    break
                r, c = t.get("role"), t.get("content")
                if (r not in _ROLESET or type(c) is not str or not c or c.isspace()
                        or ((not c.isprintable() or "<" in c or "[" in c) and _needs_scan(c))):
                    break
                roles.append(r)
            else:
                if turn_order_issue(roles) is None:
                    if not build:
                        return True, []
                    return {"messages": [{"role": t["role"], "content": t["content"]} for t in turns]}, []
        return self._check_turns(rec, "messages", build)

    def _check_sharegpt(self, rec: dict, build: bool = True):
        return self._check_turns(rec, "conversations", build)

    def _check_turns(self, rec: dict, name: str, build: bool):
        key = self.key[name]
        issues: list = []
        turns = rec.get(key)
        if type(turns) is not list:
            if key not in rec:
                self._missing(rec, name, issues)
            else:
                issues.append(("wrong_type", key, f"must be a list of turns, got {kind_of(turns)}",
                               "write it as [{\"role\": \"user\", \"content\": \"...\"}, ...]", turns))
            return None, issues
        if not turns:
            issues.append(("empty_text", key, "has no turns", "add a user message and the assistant's answer", turns))
            return None, issues
        sharegpt = name == "conversations"
        roles: list = []
        msgs = [] if build else None
        ok = True
        for i, t in enumerate(turns):
            if type(t) is not dict:
                issues.append(("wrong_type", f"{key}[{i}]", f"a turn must be an object, got {kind_of(t)}",
                               "write each turn as {\"role\": \"user\", \"content\": \"...\"}", t))
                ok = False
                continue
            if sharegpt and "from" in t:
                raw, content, rkey, ckey = t.get("from"), t.get("value"), "from", "value"
                role = SHAREGPT_ROLES.get(raw.lower()) if type(raw) is str else None
            else:
                raw = role = t.get("role")
                content, rkey, ckey = t.get("content"), "role", "content"
            if role not in _ROLESET:
                ok = False
                if raw is None:
                    issues.append(("missing_field", f"{key}[{i}].{rkey}", "the turn has no role",
                                   "add \"role\": \"user\" or \"assistant\"" if rkey == "role" else "add \"from\": \"human\" or \"gpt\"",
                                   t))
                else:
                    issues.append(("unknown_role", f"{key}[{i}].{rkey}", f"unknown role {raw!r}" if isinstance(raw, str) else
                                   f"the role must be text, got {kind_of(raw)}",
                                   "use human, gpt or system" if rkey == "from" else "use system, user or assistant", raw))
            if type(content) is list:  # OpenAI content parts: text parts only
                content = self._parts_text(content, f"{key}[{i}].{ckey}", issues)
                if content is None:
                    ok = False
                    continue
            if type(content) is not str or not content or content.isspace():
                if content is None and ckey not in t:
                    issues.append(("missing_field", f"{key}[{i}].{ckey}", "the turn has no text",
                                   f"add \"{ckey}\": \"...\"", t))
                else:
                    self._text(content, f"{key}[{i}].{ckey}", issues)
                ok = False
                continue
            if (not content.isprintable() or "<" in content or "[" in content) and self._scan(content, f"{key}[{i}].{ckey}", issues):
                ok = False
            roles.append(role)
            if build and role in _ROLESET:
                msgs.append({"role": role, "content": content})
        if ok:
            order = turn_order_issue(roles)
            if order is not None:
                idx, message, hint = order
                issues.append(("turn_order", f"{key}[{idx}].{'from' if sharegpt and 'from' in turns[idx] else 'role'}",
                               message, hint, None))
                ok = False
        if not ok:
            return None, issues
        return ({"messages": msgs} if build else True), issues

    def _parts_text(self, parts: list, field: str, issues: list) -> str | None:
        texts = []
        for j, p in enumerate(parts):
            if type(p) is dict and p.get("type") == "text" and type(p.get("text")) is str:
                texts.append(p["text"])
            else:
                kind = p.get("type") if type(p) is dict else kind_of(p)
                issues.append(("wrong_type", f"{field}[{j}]", f"only text parts can be trained, got {kind!r}",
                               "remove images/audio parts or write the content as plain text", p))
                return None
        return "".join(texts)


def _needs_scan(text: str) -> bool:
    return CONTROL.search(text) is not None or ("<" in text or "[" in text) and SPECIAL.search(text) is not None


def turn_order_issue(roles: list[str]) -> tuple[int, str, str] | None:
    """(turn index, message, hint) for the first order problem, or None.
    After an optional system message, user and assistant alternate; the last turn is the assistant's."""
    start = 1 if roles and roles[0] == "system" else 0
    n = len(roles)
    for i in range(start, n):
        r = roles[i]
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if r == expected:
            continue
        if r == "system":
            return i, "a system message may only come first", "move it to the start or merge it into the user message"
        if i > start and roles[i - 1] == r:
            return i, f"two {r} messages in a row (turns {i} and {i + 1})", \
                "add the missing reply between them, or merge them (cleaning: merge same-role turns)"
        return i, f"expected a {expected} message here, got {r}", "the conversation must start with the user; user and assistant take turns"
    if n == start:
        return max(0, n - 1), "no user or assistant messages", "add a user question and an assistant answer"
    if roles[-1] != "assistant":
        return n - 1, "the conversation ends with a user message", \
            "end each conversation with the assistant's answer, which is what the model learns"
    return None


def to_example(record: dict, fmt: str, column_map: dict | None = None, where: str = "") -> tuple[dict | None, list[Problem]]:
    """Convert one record; return (example, problems). example is None when the record is unusable.
    Warnings (special tokens, control characters) are not problems here."""
    if fmt not in FORMAT_NAMES:
        return None, [Problem(where, f"unknown format {fmt!r}", f"use one of {', '.join(FORMAT_NAMES)}")]
    if not isinstance(record, dict):
        return None, [Problem(where, f"expected an object, got {kind_of(record)}", "each record must be a {...} object")]
    ex, issues = Schema(fmt, column_map).check(record, True)
    from core.data.issues import WARNING_CODES
    return ex, [Problem(f"{where} {field}".strip(), msg, hint) for code, field, msg, hint, _ in issues
                if code not in WARNING_CODES]
