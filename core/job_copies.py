"""A job's copy in its run folder (runs/<run>/jobs/<id>.json, written by core.jobs on every change of
its row) read back for core.jobs.rebuild: only what Danlu itself could have written there."""
from __future__ import annotations

import os
from pathlib import Path

from core.rundir import read_small_json

COPY_MAX_BYTES = 1 << 20  # a row is a few KiB, with a supervisor's traceback in its message tens
_TYPES = {"TEXT": (str,), "INTEGER": (int,), "REAL": (int, float)}


def row_from_copy(path: Path, column_defs: list, states: tuple) -> dict | None:
    """The row a copy holds, or None when it is not one Danlu wrote for this folder: a link, a pipe, a
    device or a huge file; torn JSON; a column missing or of another type; a state not in `states`;
    another job's id or another folder's."""
    data = read_small_json(path, COPY_MAX_BYTES)
    row = {}
    for name, sqltype in column_defs:
        value = data.get(name)
        kind = _TYPES[sqltype.split()[0]]
        if value is None and "NOT NULL" not in sqltype:
            row[name] = None
        elif isinstance(value, kind) and not isinstance(value, bool):
            row[name] = value
        else:
            return None
    if row["id"] != path.stem or row["state"] not in states or Path(row["run_dir"]).name != path.parent.parent.name:
        return None
    old, row["run_dir"] = row["run_dir"], str(path.parent.parent)  # the workspace may have moved since
    if row["config_path"].startswith(old + os.sep):
        row["config_path"] = row["run_dir"] + row["config_path"][len(old):]
    return row
