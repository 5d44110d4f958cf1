"""Errors that carry words for people: what happened, where, and what to do.

Every user-facing failure in Danlu is one of these, and every sentence in them is a message code
with parameters (core.messages.Msg): the CLI prints `str(err)` in English and exits with
`err.exit_code` (2 for bad input, 1 for a failed run); the page renders the same codes in its
language. A plain string where a Msg belongs is refused at once (TypeError), so no sentence
reaches a person without a code. Nothing here imports torch or gradio.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.messages import Msg, place, said


def _need_msg(value, what: str, optional: bool = False) -> None:
    if isinstance(value, Msg) or (optional and value is None):
        return
    raise TypeError(f"{what} must be a core.messages.Msg (a code from core/catalog_en.yaml), got {type(value).__name__}")


class Worded:
    """`message` and `hint`: the English of `msg` and `hint_msg` (what is wrong, what to do)."""

    @property
    def message(self) -> str:
        return str(self.msg)

    @property
    def hint(self) -> str:
        return str(self.hint_msg) if self.hint_msg is not None else ""


@dataclass(frozen=True)
class Problem(Worded):
    """One thing wrong with an input. `where` is a field name, `file:line`, or a record (shown as it
    is: names and places are not translated); `msg` says what is wrong, `hint_msg` what to do."""

    where: str
    msg: Msg
    hint_msg: Msg | None = None

    def __post_init__(self):
        _need_msg(self.msg, "Problem's message")
        _need_msg(self.hint_msg, "Problem's hint", optional=True)
        # the place may be what the person typed (an unknown key): short and on one line wherever shown
        object.__setattr__(self, "where", place(self.where))

    def as_msg(self) -> Msg:
        """The whole line ("where: message — hint") as one message, for a page to render."""
        if self.where:
            if self.hint_msg is not None:
                return Msg("error.where_hint", where=self.where, message=self.msg, hint=self.hint_msg)
            return Msg("error.where", where=self.where, message=self.msg)
        return Msg("error.hint", message=self.msg, hint=self.hint_msg) if self.hint_msg is not None else self.msg

    def __str__(self) -> str:
        return str(self.as_msg())

    def to_dict(self) -> dict:
        return {"where": self.where, **said(self.msg, self.hint_msg)}


class DanluError(Worded, Exception):
    """Base class. `exit_code` 2 means "your input is wrong", 1 means "the work failed"."""

    exit_code = 1

    def __init__(self, message: Msg, hint: Msg | None = None, where: str = ""):
        _need_msg(message, f"{type(self).__name__}'s message")
        _need_msg(hint, f"{type(self).__name__}'s hint", optional=True)
        super().__init__(message)  # the Msg itself: an error pickled to another process comes back whole
        self.msg = message
        self.hint_msg = hint
        self.where = where

    def problem(self) -> Problem:
        return Problem(self.where, self.msg, self.hint_msg)

    def as_msg(self) -> Msg:
        """Everything the error says as one message (str(err) is its English)."""
        return self.problem().as_msg()

    def __str__(self) -> str:
        return str(self.as_msg())


@dataclass
class InputError(DanluError):
    """One or more problems with something the user gave us. Shows all of them at once."""

    problems: list[Problem] = field(default_factory=list)
    title: Msg = field(default_factory=lambda: Msg("error.input"))
    exit_code = 2

    def __post_init__(self):
        super().__init__(self.title)

    def as_msg(self) -> Msg:
        """"title (2 problems):" then each problem on its own line."""
        return Msg("error.problems", title=self.title, n=len(self.problems), problems=[p.as_msg() for p in self.problems])

    def __str__(self) -> str:
        if not self.problems:  # the title alone (the list would end in a dangling "  - ")
            return f"{self.title} (0 problems):"
        return str(self.as_msg())


class ConfigError(InputError):
    """A training config that cannot be used; `problems` name the fields. `source` names the file
    (or "--set", "preset demo"); without one the title says "the config"."""

    def __init__(self, problems: list[Problem], source: str | None = None):
        title = Msg("error.config") if source is None else Msg("error.source", source=source)
        super().__init__(problems=list(problems), title=title)


class NotFound(DanluError):
    exit_code = 2


class JobError(DanluError):
    """A request about a job that cannot be done in its current state (e.g. delete while running)."""

    exit_code = 2
