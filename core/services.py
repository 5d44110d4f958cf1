"""The one object app.py builds and passes down to the GUI and the CLI: no hidden global state."""
from __future__ import annotations

from dataclasses import dataclass

from core.jobs import JobStore
from core.workspace import Workspace


@dataclass(frozen=True)
class Services:
    workspace: Workspace
    store: JobStore

    @classmethod
    def create(cls, home=None) -> "Services":
        ws = Workspace.open(home)
        return cls(workspace=ws, store=JobStore(ws.db_path))
