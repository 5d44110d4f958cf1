"""The six dataset formats, how each record is checked, and how it becomes one training example.

    messages           {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", ...}]}
    sharegpt           {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", ...}]}
    alpaca             {"instruction": "...", "input": "...", "output": "..."}   (+ optional "system")
    prompt_completion  {"prompt": "...", "completion": "..."}
    text               {"text": "..."}
    preference         {"prompt": "...", "chosen": "...", "rejected": "..."}  (and ShareGPT / shared-history pairs:
                       core/data/pairs.py) -> {"prompt": [turns], "chosen": [turns], "rejected": [turns]}

Every format except `text` becomes {"messages": [...]}: the training recipe renders it with the
model's chat template and learns only the assistant turns (`preference` keeps its two answers apart). `Schema(fmt, column_map).check(record)`
returns the example and every problem of the record at once, each with its field path
(`messages[2].content`). It runs once per row of files with millions of rows, so the happy path
builds no strings.
"""
from __future__ import annotations

import re

from core.errors import Problem
from core.messages import Msg, verbatim

FORMAT_NAMES = ("messages", "sharegpt", "alpaca", "prompt_completion", "text", "preference")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "model": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
                  "system": "system"}
ROLES = ("system", "user", "assistant")
_ROLESET = frozenset(ROLES)
# The fields each format reads, by their expected names (column_map maps them to the user's names).
FIELDS = {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ("instruction", "input", "output", "system"),
          "prompt_completion": ("prompt", "completion"), "text": ("text",),
          "preference": ("prompt", "chosen", "rejected", "conversations", "messages", "system")}
REQUIRED = {"messages": ("messages",), "sharegpt": ("conversations",), "alpaca": ("instruction", "output"),
            "prompt_completion": ("prompt", "completion"), "text": ("text",), "preference": ("chosen", "rejected")}
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
    "chosen": ("better", "preferred", "winner", "good_answer", "accepted"),
    "rejected": ("worse", "dispreferred", "loser", "bad_answer"),
}
# Found in text values: C0/C1 controls and lone surrogates, and the special tokens of common chat
# templates, which the tokenizer would read as control tokens. Two patterns, each behind a cheap
# C-level test (isprintable, `in`): one alternation regex over every string cost 4 us a string.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
SPECIAL = re.compile(r"<\|[A-Za-z0-9_]{1,40}\|>|</s>|<s>|\[/?INST\]|<(?:start|end)_of_turn>")
_HARD_BAD = re.compile(r"[\x00\ud800-\udfff]")


def kind_of(value) -> Msg:
    """A type name a non-programmer recognises."""
    if value is None:
        return Msg("value.null")
    if isinstance(value, bool):
        return Msg("value.bool")
    if isinstance(value, (int, float)):
        return Msg("value.number")
    if isinstance(value, str):
        return Msg("value.text")
    if isinstance(value, list):
        return Msg("value.list")
    if isinstance(value, dict):
        return Msg("value.object")
    if isinstance(value, (bytes, bytearray)):
        return Msg("value.binary")
    return verbatim(type(value).__name__)


def _col(column_map: dict | None, name: str) -> str:
    return (column_map or {}).get(name, name)


def detect_format(record: dict, column_map: dict | None = None) -> str | None:
    """Name the format of one record from its keys (after column mapping), or None."""
    if not isinstance(record, dict):
        return None
    has = lambda k: _col(column_map, k) in record  # noqa: E731
    if has("chosen") and has("rejected"):  # before messages/conversations: pairs may carry a history
        return "preference"
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
    candidates = [(fmt, REQUIRED[fmt])] if fmt else [("preference", ("chosen", "rejected")), ("messages", ("messages",)),
                                                     ("prompt_completion", ("prompt", "completion")), ("text", ("text",))]
    for name, needs in candidates:
        found = {n: find(n) for n in needs}
        if all(found.values()):
            return name, {n: c for n, c in found.items() if c != n}
    return None, {}


class Schema:
    """The checks of one format with one column mapping. `check(record)` -> (example, issues)
    where each issue is a tuple (code, field, message, hint, value); message and hint are Msg."""

    def __init__(self, fmt: str, column_map: dict | None = None):
        if fmt not in FORMAT_NAMES:
            raise ValueError(f"unknown format {fmt!r}")
        self.fmt = fmt
        self.column_map = dict(column_map or {})
        self.key = {name: _col(self.column_map, name) for name in FIELDS[fmt]}
        self.check = getattr(self, f"_check_{fmt}")
        self.last_prompt = None  # preference: the prompt of the last usable pair (duplicate prompts)

    # --- shared pieces --------------------------------------------------------------------
    def _missing(self, rec: dict, name: str, issues: list) -> None:
        key = self.key[name]
        other = detect_format(rec)
        if other and other != self.fmt:
            hint = Msg("data.other_format.hint", other=other)
        else:
            hint = Msg("data.add_or_map_field.hint", key=key, name=name) if key == name else Msg("data.add_field.hint", key=key)
        found = ", ".join(map(str, list(rec)[:8]))
        issues.append(("missing_field", key, Msg("data.no_field", key=key, found=found or Msg("data.nothing")), hint, None))

    def _text(self, value, field: str, issues: list, required: bool = True) -> bool:
        """Check one text value; True when it is usable text."""
        if type(value) is str:
            if not value or value.isspace():
                if required:
                    issues.append(("empty_text", field, Msg("data.empty") if not value else Msg("data.whitespace"),
                                   Msg("data.write_or_drop.hint"), value))
                    return False
                return True
            if (not value.isprintable() or "<" in value or "[" in value) and self._scan(value, field, issues):
                return False
            return True
        if value is None and not required:
            return True
        if value is None:
            issues.append(("empty_text", field, Msg("data.null"), Msg("data.write_or_remove.hint"), None))
        else:
            hint = Msg("data.quote_number.hint", value=str(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) \
                else Msg("data.must_hold_text.hint")
            issues.append(("wrong_type", field, Msg("data.not_text", kind=kind_of(value)), hint, value))
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
                what = Msg("data.nul_char") if hard.group() == "\x00" else Msg("data.surrogate")
                issues.append(("bad_chars", field, Msg("data.bad_char", what=what, pos=hard.start() + 1),
                               Msg("data.bad_char.hint"), value[max(0, hard.start() - 20):hard.start() + 20]))
            else:
                issues.append(("control_chars", field, Msg("data.control_char", code=f"{ord(m.group()):04X}", pos=m.start() + 1),
                               Msg("data.control_char.hint"), value[max(0, m.start() - 20):m.start() + 20]))
        m = SPECIAL.search(value) if "<" in value or "[" in value else None
        if m is not None:
            issues.append(("special_tokens", field, Msg("data.special_token", token=repr(m.group())),
                           Msg("data.special_token.hint"), m.group()))
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

    def _check_preference(self, rec: dict, build: bool = True):
        from core.data.pairs import check_pair
        return check_pair(self, rec, build)

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
                issues.append(("wrong_type", key, Msg("data.not_turn_list", kind=kind_of(turns)), Msg("data.not_turn_list.hint"),
                               turns))
            return None, issues
        if not turns:
            issues.append(("empty_text", key, Msg("data.no_turns"), Msg("data.no_turns.hint"), turns))
            return None, issues
        sharegpt = name == "conversations"
        msgs, roles, ok = self.turn_list(turns, key, sharegpt, build, issues)
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

    def turn_list(self, turns: list, key: str, sharegpt: bool, build: bool, issues: list):
        """Every turn of a list checked: (messages or None, roles, ok). ShareGPT's from/value turns
        are read when `sharegpt`; role/content turns always."""
        roles: list = []
        msgs = [] if build else None
        ok = True
        for i, t in enumerate(turns):
            if type(t) is not dict:
                issues.append(("wrong_type", f"{key}[{i}]", Msg("data.turn_not_object", kind=kind_of(t)),
                               Msg("data.turn_not_object.hint"), t))
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
                    issues.append(("missing_field", f"{key}[{i}].{rkey}", Msg("data.no_role"),
                                   Msg("data.add_role.hint") if rkey == "role" else Msg("data.add_from.hint"), t))
                else:
                    issues.append(("unknown_role", f"{key}[{i}].{rkey}", Msg("data.unknown_role", role=repr(raw))
                                   if isinstance(raw, str) else Msg("data.role_not_text", kind=kind_of(raw)),
                                   Msg("data.use_sharegpt_roles.hint") if rkey == "from" else Msg("data.use_roles.hint"), raw))
            if type(content) is list:  # OpenAI content parts: text parts only
                content = self._parts_text(content, f"{key}[{i}].{ckey}", issues)
                if content is None:
                    ok = False
                    continue
            if type(content) is not str or not content or content.isspace():
                if content is None and ckey not in t:
                    issues.append(("missing_field", f"{key}[{i}].{ckey}", Msg("data.no_text"), Msg("data.add_text.hint", key=ckey), t))
                else:
                    self._text(content, f"{key}[{i}].{ckey}", issues)
                ok = False
                continue
            if (not content.isprintable() or "<" in content or "[" in content) and self._scan(content, f"{key}[{i}].{ckey}", issues):
                ok = False
            roles.append(role)
            if build and role in _ROLESET:
                msgs.append({"role": role, "content": content})
        return msgs, roles, ok

    def _parts_text(self, parts: list, field: str, issues: list) -> str | None:
        texts = []
        for j, p in enumerate(parts):
            if type(p) is dict and p.get("type") == "text" and type(p.get("text")) is str:
                texts.append(p["text"])
            else:
                kind = repr(p.get("type")) if type(p) is dict else repr(str(kind_of(p)))
                issues.append(("wrong_type", f"{field}[{j}]", Msg("data.only_text_parts", kind=kind),
                               Msg("data.only_text_parts.hint"), p))
                return None
        return "".join(texts)


def _needs_scan(text: str) -> bool:
    return CONTROL.search(text) is not None or ("<" in text or "[" in text) and SPECIAL.search(text) is not None


def turn_order_issue(roles: list[str]) -> tuple[int, Msg, Msg] | None:
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
            return i, Msg("data.system_not_first"), Msg("data.system_not_first.hint")
        if i > start and roles[i - 1] == r:
            return i, Msg("data.same_role_twice", role=r, a=i, b=i + 1), Msg("data.same_role_twice.hint")
        return i, Msg("data.expected_role", expected=expected, role=r), Msg("data.expected_role.hint")
    if n == start:
        return max(0, n - 1), Msg("data.no_user_or_assistant"), Msg("data.no_user_or_assistant.hint")
    if roles[-1] != "assistant":
        return n - 1, Msg("data.ends_with_user"), Msg("data.ends_with_user.hint")
    return None


def to_example(record: dict, fmt: str, column_map: dict | None = None, where: str = "") -> tuple[dict | None, list[Problem]]:
    """Convert one record; return (example, problems). example is None when the record is unusable.
    Warnings (special tokens, control characters) are not problems here."""
    if fmt not in FORMAT_NAMES:
        return None, [Problem(where, Msg("data.unknown_format", value=repr(fmt)),
                              Msg("data.use_formats.hint", formats=", ".join(FORMAT_NAMES)))]
    if not isinstance(record, dict):
        return None, [Problem(where, Msg("data.expected_object", kind=kind_of(record)), Msg("data.each_record_object.hint"))]
    ex, issues = Schema(fmt, column_map).check(record, True)
    from core.data.issues import WARNING_CODES
    return ex, [Problem(f"{where} {field}".strip(), msg, hint) for code, field, msg, hint, _ in issues
                if code not in WARNING_CODES]
