"""Can the cluster's nodes see the workspace? The training processes run on the nodes and write their
run folder there, so the workspace (and Danlu itself, with its Python) must be on a filesystem every
node mounts at the same path.

Checked twice: here, before submitting (a folder on a local disk type, such as ext4 or xfs, while the
partition has nodes other than this computer, is refused with a message saying what to do), and by
the batch script on every node before training starts (a folder it cannot read ends the job with
reason `not_shared`). A filesystem type Danlu does not know is let through to the second check.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

from core.errors import Problem
from core.messages import Msg

# local to one machine: another node cannot see what is written here (any other type passes)
LOCAL_TYPES = {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "ramfs", "overlay", "f2fs", "vfat", "exfat",
               "ntfs", "ntfs3", "fuseblk", "reiserfs", "jfs", "hfsplus", "devtmpfs", "squashfs", "zram"}


def _unescape(field: str) -> str:
    """/proc/mounts writes a space in a mount point as \\040 (and tab, newline, backslash alike)."""
    for code, ch in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, ch)
    return field


def fs_type(path: Path, mounts_text: str | None = None) -> str:
    """The filesystem type of the mount that holds `path` (the longest mount point above it)."""
    if mounts_text is None:
        try:
            mounts_text = Path("/proc/mounts").read_text()
        except OSError:
            return ""
    target = os.path.realpath(path)
    best, kind = "", ""
    for line in mounts_text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = _unescape(parts[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def this_host_names() -> set[str]:
    full = socket.gethostname()
    names = {full, full.split(".")[0]}
    try:
        fqdn = socket.getfqdn()
        names |= {fqdn, fqdn.split(".")[0]}
    except OSError:
        pass
    return {n.lower() for n in names if n}


def problems(paths: dict[str, Path], nodes: list[str], this_host: set[str] | None = None,
             mounts_text: str | None = None) -> list[Problem]:
    """One problem per folder on a local disk when the job may run on another machine.
    paths: {"workspace": ..., "Danlu": ...}; nodes: the host names of the partition's nodes."""
    here = this_host if this_host is not None else this_host_names()
    elsewhere = sorted({n for n in nodes if n.lower().split(".")[0] not in here})
    if not elsewhere:
        return []  # every node is this computer: whatever it writes, it sees
    out = []
    for label, path in paths.items():
        kind = fs_type(path, mounts_text)
        if kind in LOCAL_TYPES:
            shown = ", ".join(elsewhere[:3])
            if len(elsewhere) > 3:
                shown = Msg("cluster.nodes_more", names=shown, n=len(elsewhere) - 3)
            out.append(Problem(label, Msg("cluster.local_disk", path=str(path), kind=kind, nodes=shown),
                               Msg("cluster.local_disk.hint")))
    return out
