"""Errors that carry text for people: what happened, where, and what to do.

Every user-facing failure in Danlu is one of these. The CLI prints `str(err)` and exits with
`err.exit_code` (2 for bad input, 1 for a failed run); the GUI shows the same text. Nothing here
imports torch or gradio.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input. `where` is a field name, `file:line`, or a record."""

    where: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} — {self.hint}" if self.hint else text

    def to_dict(self) -> dict:
        return {"where": self.where, "message": self.message, "hint": self.hint}


class DanluError(Exception):
    """Base class. `exit_code` 2 means "your input is wrong", 1 means "the work failed"."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", where: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        return str(Problem(self.where, self.message, self.hint))


@dataclass
class InputError(DanluError):
    """One or more problems with something the user gave us. Shows all of them at once."""

    problems: list[Problem] = field(default_factory=list)
    title: str = "The input has problems"
    exit_code = 2

    def __post_init__(self):
        super().__init__(self.title)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{self.title} ({n} problem{'s' if n != 1 else ''}):"
        return "\n".join([head] + [f"  - {p}" for p in self.problems])


class ConfigError(InputError):
    """A training config that cannot be used; `problems` name the fields."""

    def __init__(self, problems: list[Problem], source: str = "the config"):
        super().__init__(problems=list(problems), title=f"{source} cannot be used")


class NotFound(DanluError):
    exit_code = 2


class JobError(DanluError):
    """A request about a job that cannot be done in its current state (e.g. delete while running)."""

    exit_code = 2
