"""The dataset store in the workspace: uploads kept byte for byte, cleaned versions immutable.

    <workspace>/datasets/<id>/
        dataset.json                 the manifest (display name, format, column map, version history)
        original/<uuid>.<kind>       the upload's bytes, copied before parsing, read-only, never changed
        versions/<sha256[:16]>.jsonl every cleaned version: content-addressed, never changed
        checks/<sha256[:16]>.json    cached check reports, one per version
        marks/<sha256[:16]>.json     review marks of a version (core/data/marks.py)

A version is a file; training pins one by pointing `dataset:` at it (workspace.pin_dataset uses
files inside the workspace as they are). A reviewed version also has marks, and when rows are
marked Drop a training file without them: training_path() is the file training reads. Undo moves
the current version back one step; the files stay, because a job may be pinned to them. The
display name is sanitised text for people and never becomes part of a path.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from core import trust
from core.data import marks as marks_mod
from core.data.check import check_file
from core.data.clean import OPS, run_ops
from core.data.sniff import sniff
from core.errors import InputError, NotFound, Problem
from core.messages import Msg, keep, recorded, size_msg, sizes_over
from core.paths import check_suffix, is_file, safe_name
from core.workspace import atomic_write_text, sha256_file

MAX_UPLOAD_BYTES = 2 << 30
REPORT_VERSION = 2  # check reports with message codes (core.messages)
ID_RE = re.compile(r"^ds-[0-9a-f]{12}$")
NAME_MAX = 120
STORE_MANIFEST = "dataset.json"  # datasets/<id>/dataset.json: the versions of one upload (not a run's dataset.json)
# the names the page's upload takes (the content decides the format: core.data.sniff)
UPLOAD_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx")


def sanitize_name(name: str | None) -> str:
    """A dataset's display name (core.paths.safe_name, up to NAME_MAX characters). Only ever shown,
    never used as a path: the stored file gets a generated name."""
    return safe_name(name, max_len=NAME_MAX, default="dataset")


def check_upload_name(name: str) -> None:
    """A file dropped on the page is named as a data file (UPLOAD_SUFFIXES; core.paths.check_suffix), else
    an InputError naming the ones it takes. The page checks this itself: Gradio refused other names with
    a notice in English on every page."""
    check_suffix(name, UPLOAD_SUFFIXES, Msg("sniff.export_data.hint"), shown=sanitize_name(name))


def _dir(ws, ds_id: str) -> Path:
    if not isinstance(ds_id, str) or not ID_RE.match(ds_id):
        raise NotFound(Msg("store.no_dataset", id=repr(ds_id)), Msg("store.no_dataset.hint"))
    d = ws.datasets / ds_id
    if not (d / STORE_MANIFEST).is_file():
        raise NotFound(Msg("store.no_dataset", id=repr(ds_id)), Msg("store.no_dataset.hint"))
    return d


@contextmanager
def _locked(d: Path):
    """One writer per dataset at a time (two browser tabs cleaning the same data)."""
    with open(d / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read(d: Path) -> dict:
    return json.loads((d / STORE_MANIFEST).read_text(encoding="utf-8"))


def _write(d: Path, manifest: dict) -> None:
    atomic_write_text(d / STORE_MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=1))


def _abs(d: Path, v: dict) -> dict:
    return {**v, "path": str(d / v["path"]), **{k: str(d / v[k]) for k in ("validation", "marks", "train") if v.get(k)}}


def _info(ws, d: Path, m: dict) -> dict:
    cur = m["versions"][-1]
    return {"id": m["id"], "display_name": m["display_name"], "kind": m["kind"], "size": m["size"], "created": m["created"],
            "format": m.get("format", "auto"), "column_map": m.get("column_map", {}),
            "original_path": str(d / m["original"]), "original_sha256": m["original_sha256"],
            "current_path": str(d / cur["path"]), "current_sha256": cur["sha256"], "version": len(m["versions"]) - 1,
            "training_path": str(d / cur.get("train", cur["path"])),
            "versions": [_abs(d, v) for v in m["versions"]],
            "can_undo": len(m["versions"]) > 1}



def import_file(ws, src_path: str | os.PathLike, display_name: str | None = None, *, origin: str,
                expected_size: int | None = None, expected_sha256: str | None = None,
                max_bytes: int = MAX_UPLOAD_BYTES, upload: bool = False) -> dict:
    """Copy an upload into the store (before any parsing) and return its info. The same bytes
    uploaded again return the existing dataset (`existing: True`). Refused files leave nothing
    behind. `expected_size`/`expected_sha256` catch a truncated upload. origin (core.trust): a
    path from the page must lie inside the workspace or the allowed folders. upload: a file dropped on the
    page, also refused when not named as a data file (check_upload_name, once its path is checked)."""
    name = sanitize_name(display_name if display_name is not None else Path(src_path).name)
    src = Path(trust.check_file(src_path, ws, origin, field="dataset", must_exist=False))
    if upload:
        check_upload_name(display_name if display_name is not None else src.name)
    if not is_file(src):
        raise InputError(problems=[Problem(name, Msg("store.missing"), Msg("any.upload_again"))])
    size = src.stat().st_size
    if size > max_bytes:
        raise InputError(problems=[Problem(name, Msg("store.too_big", **sizes_over(size, max_bytes)),
                                           Msg("store.too_big.hint"))], title=Msg("store.too_big_title", file=name))
    ds_id = f"ds-{uuid.uuid4().hex[:12]}"
    d = ws.datasets / ds_id
    (d / "original").mkdir(parents=True)
    tmp = d / "original" / ".upload.tmp"
    try:
        h, copied = hashlib.sha256(), 0
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            for chunk in iter(lambda: fi.read(1 << 20), b""):
                h.update(chunk)
                fo.write(chunk)
                copied += len(chunk)
                if copied > max_bytes:
                    raise InputError(problems=[Problem(name, Msg("store.over_limit", limit=size_msg(max_bytes)),
                                                       Msg("store.over_limit.hint"))])
            fo.flush()
            os.fsync(fo.fileno())
        digest = h.hexdigest()
        if (expected_size is not None and copied != expected_size) or (expected_sha256 and expected_sha256 != digest):
            raise InputError(problems=[Problem(name, Msg("store.incomplete", got=copied, expected=str(expected_size or "?")),
                                               Msg("any.upload_file_again"))], title=Msg("store.incomplete_title", file=name))
        existing = _find_by_sha(ws, digest)
        if existing is not None:
            _remove(d)
            return {**existing, "existing": True}
        sn = sniff(tmp)
        if sn.refusal is not None:
            raise InputError(problems=[sn.refusal.to_problem(name)], title=Msg("error.source", source=name))
        rel = f"original/{uuid.uuid4().hex}.{sn.kind}"
        os.replace(tmp, d / rel)
        os.chmod(d / rel, 0o444)
        manifest = {"id": ds_id, "display_name": name, "kind": sn.kind, "size": copied, "created": time.time(),
                    "original": rel, "original_sha256": digest, "format": "auto", "column_map": {},
                    "versions": [{"sha256": digest, "path": rel, "op": "import", "params": {},
                                  **keep("summary", Msg("store.uploaded", file=name)), "created": time.time()}]}
        _write(d, manifest)
        return {**_info(ws, d, manifest), "existing": False}
    except BaseException:
        _remove(d)
        raise


def _remove(d: Path) -> None:
    for p in sorted(d.rglob("*"), reverse=True):
        if p.is_dir():
            p.rmdir()
        else:
            os.chmod(p, 0o644)
            p.unlink()
    d.rmdir()


def _find_by_sha(ws, digest: str) -> dict | None:
    for info in list_datasets(ws):
        if info["original_sha256"] == digest:
            return info
    return None


def list_datasets(ws) -> list[dict]:
    """Every dataset's info, newest first."""
    out = []
    for d in ws.datasets.iterdir() if ws.datasets.is_dir() else []:
        if ID_RE.match(d.name) and (d / STORE_MANIFEST).is_file():
            try:
                out.append(_info(ws, d, _read(d)))
            except (OSError, ValueError, KeyError):
                continue  # a half-written or damaged manifest: skip it rather than break the list
    return sorted(out, key=lambda i: -i["created"])


def get_dataset(ws, ds_id: str) -> dict:
    d = _dir(ws, ds_id)
    return _info(ws, d, _read(d))


def version_file(d: Path, m: dict, n: int) -> Path:
    """Version `n`'s data file, or NotFound in words when it is gone from the store (deleted by hand): a read
    of it raised FileNotFoundError, a 500, while the review desk still showed it from memory."""
    path = d / m["versions"][n]["path"]
    if not path.is_file():
        raise NotFound(Msg("store.data_gone", name=m["display_name"], version=n), Msg("store.data_gone.hint"))
    return path


def current_version_path(ws, ds_id: str) -> Path:
    """The current version's data file; NotFound in words when it is gone (Download raised FileNotFoundError)."""
    d = _dir(ws, ds_id)
    m = _read(d)
    return version_file(d, m, len(m["versions"]) - 1)


def training_path(ws, ds_id: str) -> Path:
    """The file training reads: the current version without the rows marked Drop."""
    d = _dir(ws, ds_id)
    cur = _read(d)["versions"][-1]
    return d / cur.get("train", cur["path"])


def add_version(ws, ds_id: str, make) -> dict:
    """Append the version `make(d, manifest)` returns (a dict of version fields; None: nothing
    changed), under the dataset's lock. Returns {"changed", "entry", "dataset": info}."""
    d = _dir(ws, ds_id)
    with _locked(d):
        m = _read(d)
        entry = make(d, m)
        if entry is not None:
            m["versions"].append({"created": time.time(), **entry})
            _write(d, m)
    return {"changed": entry is not None, "entry": entry, "dataset": _info(ws, d, m)}


def set_format(ws, ds_id: str, fmt: str = "auto", column_map: dict | None = None) -> dict:
    """Remember the format and column mapping chosen for this dataset (used by checks, ops, training)."""
    from core.data.formats import FIELDS, FORMAT_NAMES
    problems = []
    if fmt not in ("auto", *FORMAT_NAMES):
        problems.append(Problem("dataset_format", Msg("data.unknown_format", value=repr(fmt)),
                                Msg("data.use_auto_or_formats.hint", formats=", ".join(FORMAT_NAMES))))
    known = {n for names in FIELDS.values() for n in names}
    for k, v in (column_map or {}).items():
        if k not in known:
            problems.append(Problem(f"column_map.{k}", Msg("any.not_a_field"), Msg("store.use_fields.hint", fields=", ".join(sorted(known)))))
        if not isinstance(v, str) or not v.strip():
            problems.append(Problem(f"column_map.{k}", Msg("store.needs_column"), Msg("store.needs_column.hint")))
    if problems:
        raise InputError(problems=problems, title=Msg("store.format_title"))
    d = _dir(ws, ds_id)
    with _locked(d):
        m = _read(d)
        m["format"], m["column_map"] = fmt, {k: v.strip() for k, v in (column_map or {}).items()}
        _write(d, m)
    return _info(ws, d, m)


def training_settings(ws, ds_id: str) -> dict:
    """The TrainConfig fields that make a job train on the current version."""
    info = get_dataset(ws, ds_id)
    return {"dataset": info["training_path"], "dataset_format": info["format"], "column_map": info["column_map"]}


def check_dataset(ws, ds_id: str, *, refresh: bool = False) -> dict:
    """The check report (to_dict) of the current version, cached per version and format settings (and
    REPORT_VERSION: a report of an older Danlu lacks the message codes the page renders)."""
    d = _dir(ws, ds_id)
    m = _read(d)
    cur = m["versions"][-1]
    key = hashlib.sha256(json.dumps([cur["sha256"], m.get("format"), m.get("column_map"), REPORT_VERSION],
                                    sort_keys=True).encode()).hexdigest()[:16]
    cache = d / "checks" / f"{key}.json"
    if cache.is_file() and not refresh:
        return json.loads(cache.read_text(encoding="utf-8"))
    rep = check_file(d / cur["path"], m.get("format", "auto"), m.get("column_map") or None, display_name=m["display_name"])
    out = rep.to_dict()
    atomic_write_text(cache, json.dumps(out, ensure_ascii=False))
    return out


def apply_op(ws, ds_id: str, op: str, *, origin: str | None = None, model: str | None = None,
             max_seq_length: int = 1024, chat_template: str = "auto", **params) -> dict:
    """Run one cleaning operation on the current version. A new immutable version is made when
    something changed; returns {"summary", "summary_msg" (core.messages.keep), "changed": bool, "result",
    "dataset": info}. origin (core.trust): where `model` came from (its tokenizer is loaded by the
    length operations); an operation that names a model must say it."""
    if op.replace("_", "-") not in OPS:
        raise InputError(problems=[Problem(op, Msg("clean.not_an_op"), Msg("clean.use_ops.hint", ops=", ".join(OPS)))])
    if model:
        model = trust.check_base_model(model, ws, origin)
    d = _dir(ws, ds_id)
    with _locked(d):
        m = _read(d)
        src = d / m["versions"][-1]["path"]
        (d / "versions").mkdir(exist_ok=True)
        tmp_out = d / "versions" / f".op-{uuid.uuid4().hex}.jsonl"
        tmp_val = d / "versions" / f".op-{uuid.uuid4().hex}.val.jsonl"
        kept: list = []
        try:
            results = run_ops(src, [(op, params)], tmp_out, m.get("format", "auto"), m.get("column_map") or None,
                              val_out=tmp_val, model=model, max_seq_length=max_seq_length, ws=ws, chat_template=chat_template,
                              display_name=m["display_name"], kept=kept)
            result = results[0]
            if not result["touched"]:
                return {**keep("summary", Msg("clean.unchanged", summary=recorded(result, "summary"))), "changed": False,
                        "result": result, "dataset": _info(ws, d, m)}
            entry = {"op": op, "params": _jsonable(params), **keep("summary", recorded(result, "summary")), "created": time.time(),
                     **_store_version(d, tmp_out)}
            # the review's marks follow their rows to their new numbers (core/data/marks.py)
            carried = marks_mod.remap(marks_mod.read_marks(d, m["versions"][-1]), kept)
            entry.update(marks_mod.version_fields(d, entry["path"], carried))
            if tmp_val.exists():
                val = _store_version(d, tmp_val)
                entry["validation"], entry["validation_sha256"] = val["path"], val["sha256"]
            m["versions"].append(entry)
            _write(d, m)
            return {**keep("summary", recorded(result, "summary")), "changed": True, "result": result, "dataset": _info(ws, d, m)}
        finally:
            for p in (tmp_out, tmp_val):
                if p.exists():
                    p.unlink()


def _store_version(d: Path, tmp: Path) -> dict:
    digest = sha256_file(tmp)
    rel = f"versions/{digest[:16]}.jsonl"
    if not (d / rel).exists():
        os.replace(tmp, d / rel)
        os.chmod(d / rel, 0o444)
    return {"sha256": digest, "path": rel}


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params, default=str))


def undo(ws, ds_id: str) -> dict:
    """Go back one version (the undone file stays on disk: a job may be pinned to it)."""
    d = _dir(ws, ds_id)
    with _locked(d):
        m = _read(d)
        if len(m["versions"]) < 2:
            raise InputError(problems=[Problem(m["display_name"], Msg("store.nothing_to_undo"), Msg("store.nothing_to_undo.hint"))])
        gone = m["versions"].pop()
        _write(d, m)
    return {**keep("summary", Msg("clean.undid", summary=recorded(gone, "summary"))), "dataset": _info(ws, d, m)}


def export_path(ws, ds_id: str) -> Path:
    """The file to offer for download: the current version."""
    return current_version_path(ws, ds_id)


def insight_dataset(ws, ds_id: str, *, origin: str, model: str | None = None, max_seq_length: int = 1024,
                    train_on_inputs: bool = False, preview: int = 0, chat_template: str = "auto") -> dict:
    """insight() of the current version with the dataset's format settings; origin: where `model` came from."""
    from core.data.insight import insight
    if model:
        model = trust.check_base_model(model, ws, origin)
    d = _dir(ws, ds_id)
    m = _read(d)
    return insight(d / m["versions"][-1]["path"], m.get("format", "auto"), m.get("column_map") or None, model=model,
                   max_seq_length=max_seq_length, train_on_inputs=train_on_inputs, ws=ws, preview=preview,
                   chat_template=chat_template, display_name=m["display_name"])


def dataset_rows(ws, ds_id: str, start: int = 1, count: int = 50) -> list[dict]:
    """Rows of the current version for a table: [{"row", "line", "record"}] (row numbers are what edit/delete take)."""
    from core.data.check import peek_rows
    return peek_rows(current_version_path(ws, ds_id), start, count)
