"""Problems found in a dataset, and the bounded collector that counts them.

A check of a million-row file can find a million problems; the report keeps every count but only
the first `keep` examples of each kind, so memory stays flat whatever the file size. Each issue
names the 1-based line (JSONL) or record and starting line (CSV, JSON), the field path
(`messages[2].content`), a short escaped value and a fix.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from core.catalog_en import EN
from core.errors import Problem, Worded
from core.messages import Msg, place, said

KEEP_PER_CODE = 20
_SURROGATE = re.compile(r"[\ud800-\udfff]")
VALUE_CHARS = 80

# The kinds of problems, each with a short title (message code "kind.<kind>") for the "counts per
# type" summary. Error kinds make a file unusable; warning kinds never do (they are shown, counted,
# and left to the user).
KINDS = (
    # file level
    "empty", "refused", "encoding", "too_big", "unknown_format", "header", "read_error",
    # record level
    "bad_json", "nan", "big_number", "duplicate_key", "not_object", "wrong_type", "missing_field", "empty_text", "unknown_role",
    "turn_order", "bad_chars", "line_too_long", "ragged", "same_answers", "prompt_mismatch", "no_target_any",
    # warnings
    "duplicates", "special_tokens", "control_chars", "blank_lines", "utf16", "ignored_columns", "column_guess", "coerced",
    "few_rows", "too_long", "no_target", "header_spaces", "duplicate_prompt",
)
TITLES = {kind: EN["kind." + kind] for kind in KINDS}  # in English, for the CLI and the report's JSON


def title(kind: str) -> Msg:
    """A kind of problem's short title ("malformed JSON")."""
    return Msg("kind." + kind)
WARNING_CODES = frozenset({"duplicates", "special_tokens", "control_chars", "blank_lines", "utf16", "ignored_columns",
                           "column_guess", "coerced", "few_rows", "too_long", "no_target", "header_spaces",
                           "duplicate_prompt"})


def short(value, limit: int = VALUE_CHARS) -> str:
    """A value as a person can read it on one line: JSON-escaped, invisible characters shown, cut."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    # Line and paragraph separators and bidi controls would break or reorder the line on screen.
    for ch in ("\u2028", "\u2029", "\u0085", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
               "\u2066", "\u2067", "\u2068", "\u2069", "\u200b", "\ufeff"):
        if ch in text:
            text = text.replace(ch, f"\\u{ord(ch):04x}")
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)  # unprintable: UTF-8 cannot encode them
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _printable(text: str) -> str:
    """Keys and messages can carry lone surrogates from the data; they cannot be printed as UTF-8."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _SURROGATE.search(text) else text


def _printable_msg(m: Msg) -> Msg:
    """A message whose text parameters (values quoted from the data) carry no lone surrogates."""
    if not any(isinstance(v, str) and _SURROGATE.search(v) for v in m.params.values()):
        return m
    return Msg(m.code, **{k: _printable(v) if isinstance(v, str) else v for k, v in m.params.items()})


@dataclass
class Issue(Worded):
    code: str                   # the kind of problem (KINDS)
    msg: Msg                    # what is wrong
    hint_msg: Msg | None = None  # what to do
    field: str = ""
    line: int | None = None     # 1-based physical line where the record starts (None for Parquet)
    record: int | None = None   # 1-based record number (differs from line in CSV and JSON arrays)
    value: str | None = None    # short escaped value, already cut

    def where(self, file: str = "") -> str:
        """`file:12`, `file:9 (record 5)`, `file record 5` — then the field."""
        loc = file
        if self.line is not None:
            loc += f":{self.line}"
            if self.record is not None and self.record != self.line:
                loc += f" (record {self.record})"
        elif self.record is not None:
            loc += f" record {self.record}" if loc else f"record {self.record}"
        return f"{loc} {self.field}".strip()

    def human(self, file: str = "") -> str:
        """`FILE:LINE field: message — fix`"""
        text = f"{self.where(file)}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text

    def to_problem(self, file: str = "") -> Problem:
        return Problem(self.where(file), self.msg, self.hint_msg)

    def to_dict(self) -> dict:
        return {"line": self.line, "record": self.record, "field": self.field, **said(self.msg, self.hint_msg),
                "code": self.code, "value": self.value}


class Collector:
    """Counts every issue; keeps the first KEEP_PER_CODE of each code."""

    def __init__(self, keep: int = KEEP_PER_CODE):
        self.keep = keep
        self.counts: dict[str, int] = {}
        self.kept: dict[str, list[Issue]] = {}

    def add(self, issue: Issue) -> None:
        n = self.counts.get(issue.code, 0)
        self.counts[issue.code] = n + 1
        if n < self.keep:
            self.kept.setdefault(issue.code, []).append(issue)

    def report(self, code: str, message: Msg, hint: Msg | None = None, field: str = "", line: int | None = None,
               record: int | None = None, value=None, has_value: bool = True) -> None:
        """Like add(), but builds the Issue (and escapes the value) only when it is kept."""
        n = self.counts.get(code, 0)
        self.counts[code] = n + 1
        if n < self.keep:
            self.kept.setdefault(code, []).append(
                Issue(code, _printable_msg(message), hint, place(field), line, record,
                      short(value) if has_value and value is not None else None))

    def count(self, code: str, n: int = 1) -> None:
        """Count without an example (for issues summarised elsewhere)."""
        self.counts[code] = self.counts.get(code, 0) + n

    def merge(self, other: "Collector", line_offset: int = 0, record_offset: int = 0) -> None:
        """Fold in a collector from a later part of the same file (parallel checking)."""
        for code, n in other.counts.items():
            have = self.counts.get(code, 0)
            self.counts[code] = have + n
            room = self.keep - len(self.kept.get(code, []))
            for issue in other.kept.get(code, [])[:max(0, room)]:
                if issue.line is not None:
                    issue.line += line_offset
                if issue.record is not None:
                    issue.record += record_offset
                self.kept.setdefault(code, []).append(issue)

    def errors(self) -> int:
        return sum(n for c, n in self.counts.items() if c not in WARNING_CODES)

    def shown(self, warnings: bool = False) -> list[Issue]:
        """The kept errors (or warnings) in file order."""
        out = [i for c, lst in self.kept.items() if (c in WARNING_CODES) == warnings for i in lst]
        return sorted(out, key=lambda i: (i.line or 0, i.record or 0))
