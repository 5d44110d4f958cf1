"""The one object app.py builds and passes down to the GUI and the CLI: no hidden global state."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from core.errors import DanluError
from core.messages import Msg
from core.job_table_file import JobTableError
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
    that (disk fault, overwritten), locked or read-only is reported in words instead of a traceback
    (core.job_table_file.table_error)."""
    try:
        return JobStore(ws.db_path)
    except JobTableError:
        raise
    except sqlite3.DatabaseError as e:
        raise DanluError(Msg("db.damaged", path=str(ws.db_path), error=str(e)),
                         hint=Msg("db.damaged.hint", name=ws.db_path.name, runs=str(ws.runs), exports=str(ws.exports))) from e
