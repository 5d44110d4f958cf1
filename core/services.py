"""The one object app.py builds and passes down to the GUI and the CLI: no hidden global state."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from core.errors import DanluError
from core.jobs import JobStore
from core.workspace import Workspace


@dataclass(frozen=True)
class Services:
    workspace: Workspace
    store: JobStore

    @classmethod
    def create(cls, home=None) -> "Services":
        ws = Workspace.open(home)
        return cls(workspace=ws, store=open_store(ws))


def open_store(ws: Workspace) -> JobStore:
    """The job table. SQLite recovers a torn write by itself (WAL checksums); a file damaged beyond
    that (disk fault, overwritten) is reported in words instead of a traceback."""
    try:
        return JobStore(ws.db_path)
    except sqlite3.DatabaseError as e:
        raise DanluError(f"The job table {ws.db_path} is damaged and cannot be opened ({e}).",
                         hint=f"Stop Danlu, move the file aside (e.g. rename it to {ws.db_path.name}.broken) and "
                              "start again with an empty job list. Runs, adapters and exports in "
                              f"{ws.runs} and {ws.exports} are untouched.") from e
