"""The one audited door for every path or name a person types into the GUI.

Danlu runs on a GPU box whose browser form may be reachable by others (with a login), so any text
field that turns into a file path is an attack surface: `../../.ssh/id_rsa` as a dataset,
`/etc/passwd` as a base-model folder, a symlink planted in the workspace that points out of it,
`http://169.254.169.254/` as a "file". Every such value goes through one of these functions, which
either return a path inside the allowed roots or raise `core.errors.InputError` naming the field.

API (for the GUI and anything else handling user text):

    safe_name("..\\\\evil\u202e.csv")  -> "evil.csv"     a display/folder name: last component only,
                                                        no control/bidi chars, no leading dots,
                                                        not a Windows device name, at most 100 chars
    clean_label("run\\n1\\x1b[31m")  -> "run 1[31m"      display text only (job names): no control chars
    resolve_user_path(text, ws, field="dataset", must_exist=True, kind="file") -> Path
        relative text counts from the workspace folder; the result (symlinks followed) must lie in
        the workspace or a folder listed under `allowed_roots:` in <workspace>/settings.yaml.
        Refused: empty, NUL, URLs (http://, file://, s3://, hf:// ...: "download it first"), UNC
        (\\\\\\\\host\\\\share, //host/share), Windows drive paths, backslashes, any `..` component,
        absolute paths outside the roots, symlinks whose target leaves the roots.
    check_suffix(name, (".csv",), hint)                an upload's name is one its upload takes, else an
                                                        InputError (the page's uploads take any file)
    safe_join(root, *parts, field=...) -> Path         root/parts, refusing absolute parts, `..`,
                                                        NUL and anything that resolves outside root
    allowed_roots(ws) -> list[Path]                     the workspace, the templates' sample data, then
                                                        the settings.yaml folders
    core.models.check_model_field(text, ws)            a model box: names pass, folders are checked as here
    exists(path), is_file(path), is_dir(path) -> bool  Path's own, where a name too long to exist is not there
                                                        (Python 3.11 raises ENAMETOOLONG): for paths people type
    read_at_most(path, limit) -> bytes                  at most limit + 1 bytes (a device, a pipe, a huge file)

core.trust decides which of these applies to a value, by where it came from (the page or the shell).

The CLI is a trusted local user: a config file path on its command line is taken as typed. Config
values that came from the browser are not. Pure Python: imports neither torch nor gradio.
"""
from __future__ import annotations

import errno
import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

from core.errors import InputError, Problem
from core.messages import Msg, english

NAME_MAX = 100
# Windows device names: a file called con.csv or nul cannot be opened on Windows and breaks copies.
RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
DRIVE_RE = re.compile(r"^[A-Za-z]:([\\/]|$)")
# Unicode categories never wanted in a name: controls, format (bidi overrides, zero-width),
# surrogates, private use, line/paragraph separators.
_BAD_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")
SETTINGS_FILE = "settings.yaml"


def _unless_too_long(test, path) -> bool:
    """test(path), where a name too long for the file system (a pasted text typed as a path) is no file
    at all: Python 3.11's exists(), is_file() and is_dir() raise ENAMETOOLONG instead of answering."""
    try:
        return test(Path(path))
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            return False
        raise


def exists(path) -> bool:
    """Path(path).exists(); False for a name too long to exist."""
    return _unless_too_long(Path.exists, path)


def is_file(path) -> bool:
    """Path(path).is_file(); False for a name too long to exist."""
    return _unless_too_long(Path.is_file, path)


def is_dir(path) -> bool:
    """Path(path).is_dir(); False for a name too long to exist."""
    return _unless_too_long(Path.is_dir, path)


def read_at_most(path, limit: int) -> bytes:
    """The first limit + 1 bytes of a file someone named: more than `limit` is too big for its purpose. A
    device that never ends (/dev/zero) or a huge file is read no further (reading it whole never returned)."""
    with open(path, "rb") as f:
        return f.read(limit + 1)


def _strip_invisible(text: str) -> str:
    return "".join(" " if ch in "\t\n\r\v\f" else ch for ch in text
                   if ch in "\t\n\r\v\f" or unicodedata.category(ch) not in _BAD_CATEGORIES)


def clean_label(text, max_len: int = 200) -> str:
    """Display text (a job's name): no control or direction-changing characters, one line, capped.
    Not a path: use safe_name for anything that becomes a file or folder name."""
    out = " ".join(_strip_invisible(str(text or "")).split())
    return out if len(out) <= max_len else out[:max_len - 1] + "…"


def safe_name(display_name, max_len: int = NAME_MAX, default: str = "unnamed") -> str:
    """A name that is safe both to show and to use as one file or folder name inside a folder we own."""
    text = _strip_invisible(str(display_name or ""))
    text = re.split(r"[\\/]", text)[-1]          # last component only: "../../x" -> "x", "C:\\a\\b" -> "b"
    text = " ".join(text.split()).strip(" .")     # no leading dots (hidden files, "..") or trailing dots (Windows)
    if text.split(".")[0].strip().lower() in RESERVED:
        text = "_" + text
    if len(text) > max_len:
        stem, dot, ext = text.rpartition(".")
        keep_ext = dot and 0 < len(ext) <= 8 and stem
        text = (stem[:max_len - len(ext) - 2].rstrip(" .") + "…." + ext) if keep_ext else text[:max_len - 1] + "…"
    return text or default


def check_suffix(name, suffixes: tuple[str, ...], hint: Msg, *, shown: str | None = None) -> None:
    """A file dropped on the page is named as the kind its upload takes (`suffixes`, any case, as
    Gradio's own check compared them), else an InputError naming the ones it takes and what to do
    (`hint`); `shown`: how the file is named in it (safe_name of `name` unless given). The page checks
    this itself, after the path: Gradio refused other names with a notice in English on every page."""
    low = str(name).lower()
    if not any(low.endswith(s) and len(low) > len(s) for s in suffixes):
        shown = shown or safe_name(name)
        raise InputError(problems=[Problem(shown, Msg("upload.bad_type", types=", ".join(suffixes)), hint)],
                         title=Msg("error.source", source=shown))


def looks_like_url(text: str) -> bool:
    t = text.strip()
    return bool(URL_RE.match(t)) or t.lower().startswith(("file:", "http:", "https:"))


def _settings(ws) -> dict:
    path = Path(ws.root) / SETTINGS_FILE
    if not path.is_file():
        return {}
    import yaml
    from core.yaml_text import KeyTwice, key_twice_problem, load_yaml_text  # a number of 5,000 digits stays its text
    try:
        data = load_yaml_text(path.read_text(encoding="utf-8")) or {}
    except KeyTwice as e:  # which key on which line, not PyYAML's English "while reading a mapping ..."
        raise InputError(problems=[key_twice_problem(e, str(path))], title=Msg("path.settings_title")) from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(problems=[Problem(str(path), Msg("any.cannot_read", error=str(e)), Msg("path.settings_fix"))],
                         title=Msg("path.settings_title"))
    if not isinstance(data, dict):
        raise InputError(problems=[Problem(str(path), Msg("path.settings_not_mapping"))], title=Msg("path.settings_title"))
    return data


def builtin_roots() -> list[Path]:
    """Read-only data shipped with Danlu: the templates' sample datasets (the Templates tab fills
    the dataset field with one of these)."""
    from core.workspace import PRESETS_DIR
    return [(PRESETS_DIR / "templates" / "data").resolve()]


def allowed_roots(ws) -> list[Path]:
    """The workspace first, then the template sample data, then every absolute folder under
    `allowed_roots:` in settings.yaml."""
    roots = [Path(ws.root).resolve(), *builtin_roots()]
    extra = _settings(ws).get("allowed_roots") or []
    if isinstance(extra, str):
        extra = [extra]
    problems = []
    for item in extra if isinstance(extra, list) else [extra]:
        p = Path(str(item)).expanduser()
        if not isinstance(item, str) or "\x00" in item or not p.is_absolute():
            problems.append(Problem(f"{SETTINGS_FILE}: allowed_roots", Msg("path.root_not_absolute", value=repr(item)),
                                    Msg("path.root_not_absolute.hint")))
            continue
        if p.resolve() == Path(p.resolve().anchor):
            problems.append(Problem(f"{SETTINGS_FILE}: allowed_roots", Msg("path.root_everything", value=repr(item)),
                                    Msg("path.root_everything.hint")))
            continue
        roots.append(p.resolve())
    if problems:
        raise InputError(problems=problems, title=Msg("path.settings_title"))
    return roots


def _problem(field: str, code: str, hint: str | None = None, **params) -> InputError:
    """A refused path: the message `code` (with its `.hint`, or the code `hint`), naming `field`.
    The typed value comes as its repr() (escaped); a long one is cut to its head and length by the
    message itself (core.messages.QUOTE_LIMIT), as every quoted value is."""
    fix = Msg(hint) if hint else (Msg(code + ".hint") if english(code + ".hint") else None)
    return InputError(problems=[Problem(field, Msg(code, **params), fix)],
                      title=Msg("path.title", field=field.replace("_", " ")))


def _check_syntax(text: str, field: str) -> None:
    """Refusals that need no file system access (UNC paths must never reach stat(): CVE-2024-34510)."""
    if "\x00" in text:
        raise _problem(field, "any.nul", "path.retype")
    if looks_like_url(text):
        raise _problem(field, "path.url", value=repr(text))
    if text.startswith(("\\\\", "//")):
        raise _problem(field, "path.unc", value=repr(text))
    if DRIVE_RE.match(text):
        raise _problem(field, "path.windows", value=repr(text))
    if "\\" in text:
        raise _problem(field, "path.backslash", value=repr(text))
    if ".." in PurePosixPath(text).parts:
        raise _problem(field, "path.dotdot", value=repr(text))


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def resolve_user_path(text, ws, *, field: str = "path", roots: list[Path] | None = None,
                      must_exist: bool = False, kind: str | None = None) -> Path:
    """A path typed by a browser user -> the real path, inside the workspace or an allowed root.
    kind: None (anything), "file" or "dir" (checked when the path exists or must_exist)."""
    if not isinstance(text, (str, os.PathLike)):
        raise _problem(field, "path.not_text", type=type(text).__name__)
    text = os.fspath(text).strip()
    if not text:
        raise _problem(field, "path.empty")
    _check_syntax(text, field)
    roots = roots if roots is not None else allowed_roots(ws)
    p = Path(text).expanduser()
    if not p.is_absolute():
        p = Path(ws.root) / p
    lexical = Path(os.path.normpath(p))
    real = p.resolve()
    # Compare both the resolved path and the one written, each against the resolved roots (a
    # workspace that is itself a symlink is fine; a link inside it that points out is not).
    raw_roots = roots + [Path(os.path.normpath(Path(ws.root)))]
    if not _inside(real, roots):
        if _inside(lexical, raw_roots):
            raise _problem(field, "path.link_out", value=repr(text), target=str(real))
        raise InputError(problems=[Problem(field, Msg("path.outside", value=repr(text), workspace=str(Path(ws.root))),
                                           Msg("path.outside.hint", settings=str(Path(ws.root) / SETTINGS_FILE)))],
                         title=Msg("path.title", field=field.replace("_", " ")))
    if must_exist and not exists(real):
        raise _problem(field, "path.not_found", value=repr(text))
    if exists(real):
        if kind == "file" and not is_file(real):
            raise _problem(field, "path.not_file", value=repr(text))
        if kind == "dir" and not is_dir(real):
            raise _problem(field, "path.not_folder", value=repr(text))
    return real


def safe_join(root, *parts, field: str = "path") -> Path:
    """root/part/... for parts that come from outside (ids, names): never absolute, never `..`,
    never NUL, and the result (symlinks followed) stays inside root."""
    root = Path(root).resolve()
    out = root
    for part in parts:
        part = os.fspath(part)
        if not isinstance(part, str) or not part or "\x00" in part:
            raise _problem(field, "path.bad_name", value=repr(str(part)))
        if "\\" in part or DRIVE_RE.match(part):
            raise _problem(field, "path.backslash_or_drive", value=repr(part))
        pp = PurePosixPath(part)
        if pp.is_absolute() or ".." in pp.parts:
            raise _problem(field, "path.leaves", value=repr(part), root=root.name)
        out = out / pp
    real = out.resolve()
    if not (real == root or real.is_relative_to(root)):
        raise _problem(field, "path.leads_out", value=repr("/".join(map(str, parts))), root=root.name)
    return real
