"""Danlu's version, as written into every export's model card."""
from __future__ import annotations

import subprocess
from pathlib import Path

VERSION = "0.1.0"
REPO = Path(__file__).resolve().parent.parent


def describe() -> str:
    """'0.1.0 (git 3c99bf5)' in a git checkout, else '0.1.0'."""
    if (REPO / ".git").exists():
        try:
            sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            sha = ""
        if sha:
            return f"{VERSION} (git {sha})"
    return VERSION
