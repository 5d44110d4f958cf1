"""The workspace: one folder that holds everything Danlu makes.

    $DANLU_HOME (default ~/.danlu)
      jobs.sqlite          the job table (WAL); rebuilt from runs/*/jobs/ when lost (core.jobs)
      models/<name>/       built-in demo model, generated on first use
      datasets/<id>/       uploads (original bytes) and their content-hashed versions
      runs/<job id>/       one folder per job: config.yaml, logs, metrics, checkpoints, adapter
      exports/<name>/      merged models
      settings.yaml        optional: extra allowed folders for user-typed paths

Everything the GUI shows can be rebuilt from these files after a restart.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core import knobs

REPO_ROOT = Path(__file__).resolve().parent.parent
PRESETS_DIR = REPO_ROOT / "presets"


def python_path() -> str:
    """PYTHONPATH for child processes: this repository first, then whatever the user had."""
    extra = os.environ.get("PYTHONPATH", "")
    return str(REPO_ROOT) + (os.pathsep + extra if extra else "")


def default_home() -> Path:
    env = knobs.get(knobs.HOME)
    return Path(env).expanduser() if env else Path.home() / ".danlu"


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def open(cls, root: str | os.PathLike | None = None) -> "Workspace":
        ws = cls(Path(root).expanduser().resolve() if root else default_home().resolve())
        for sub in ("models", "datasets", "runs", "exports"):
            (ws.root / sub).mkdir(parents=True, exist_ok=True)
        return ws

    @property
    def db_path(self) -> Path:
        return self.root / "jobs.sqlite"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    def run_dir(self, job_id: str) -> Path:
        return self.runs / job_id


def pin_dataset(ws: Workspace, path: str) -> tuple[Path, str]:
    """Training reads an immutable, content-addressed copy inside the workspace."""
    src = Path(path).resolve()
    digest = sha256_file(src)
    if src.is_relative_to(ws.datasets.resolve()):
        return src, digest
    pinned_dir = ws.datasets / "pinned"
    pinned_dir.mkdir(parents=True, exist_ok=True)
    dest = pinned_dir / f"{digest[:16]}{src.suffix.lower()[:8]}"
    if not dest.exists():
        # a temp name of its own: two jobs may pin the same file at the same moment
        fd, tmp = temp_file(pinned_dir, f".{dest.name}.", ".tmp")
        os.close(fd)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    return dest, digest


def path_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of what is at `path` now; None when nothing is (a folder deleted and made again may
    get the same pair back: compare a file inside it too)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write-then-rename in the same folder, so readers never see half a file. `durable` adds the
    fsyncs that make it survive a power cut (skipped for files rewritten every training step)."""
    atomic_write_bytes(path, text.encode("utf-8"), durable)


def atomic_write_bytes(path: Path, data: bytes, durable: bool = True) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_file(path.parent, f".{path.name}.", ".tmp", replacing=path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)


def temp_file(folder: Path, prefix: str, suffix: str, replacing: Path | None = None) -> tuple[int, str]:
    """mkstemp in `folder`, with the mode any program's new file gets (0666 less the umask), or the mode
    of the file it will replace. mkstemp's own is owner-only: a config written by copy-preset, a cleaned
    file, a run's config.yaml and results came out unreadable to the rest of a lab, and --force turned an
    existing file owner-only."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    try:
        mode = os.stat(replacing).st_mode & 0o7777 if replacing is not None else None
    except OSError:
        mode = None
    os.fchmod(fd, mode if mode is not None else 0o666 & ~umask())
    return fd, tmp


def umask() -> int:
    """This process's umask, read without changing it (os.umask sets it: a moment of 0 for other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


MANIFEST = "manifest.json"  # written last into a checkpoint or an export folder: the folder is complete when it is there


def write_manifest(folder: Path, files: list[Path], **extra) -> dict:
    """fsync every file, then write manifest.json with each one's size and sha256 (and `extra`)."""
    for p in files:
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    manifest = dict(files={p.name: dict(size=p.stat().st_size, sha256=sha256_file(p)) for p in files}, **extra)
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2))
    fsync_dir(Path(folder))
    return manifest


def read_manifest(folder: Path) -> dict:
    """The files listed in a folder's manifest.json; OSError, ValueError or KeyError when there is none."""
    files = json.loads((Path(folder) / MANIFEST).read_text())["files"]
    if not isinstance(files, dict):
        raise ValueError("the manifest lists no files")
    return files


def manifest_problem(folder: Path, files: dict, what: str = "folder") -> str | None:
    """None when every listed file is inside the folder (`what` names it) with its size and sha256,
    else the first that is not."""
    root = Path(folder).resolve()
    for name, info in files.items():
        p = (root / name).resolve()
        if root not in p.parents:
            return f"{MANIFEST} names {name!r}, outside the {what}"
        if not p.is_file():
            return f"{name} is missing"
        if p.stat().st_size != info["size"]:
            return f"{name} has the wrong size"
        if sha256_file(p) != info["sha256"]:
            return f"{name} is corrupted (checksum differs)"
    return None


def sha256_file(path: Path) -> str:
    """The file's sha256, read in 1 MiB pieces (datasets and model shards can be many GB)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def folder_bytes(folder: Path) -> int:
    """The bytes of the regular files in a folder and its subfolders, links not followed (a link inside an
    export to a large file or folder elsewhere counted that file's size)."""
    total = 0
    for top, _dirs, files in os.walk(folder):  # os.walk does not enter linked folders
        for name in files:
            try:
                st = os.lstat(os.path.join(top, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total
