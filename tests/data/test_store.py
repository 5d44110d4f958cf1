"""The dataset store: original bytes kept under a generated name, hostile names never become paths,
versions immutable with undo, and training pins a version (reliability.md d.1, E2)."""
import gzip
import json
import os
import re

import pytest

from core.data import (apply_op, check_dataset, current_version_path, get_dataset, import_file, list_datasets,
                       load_examples, set_format, training_settings, undo)
from core.data.store import sanitize_name
from core.errors import InputError, NotFound
from tests.data.helpers import chat, write_jsonl


def files_under(ws):
    return sorted(p for p in ws.datasets.rglob("*") if p.is_file())


@pytest.mark.parametrize("hostile", ["../../x.jsonl", "/etc/passwd", "..\\..\\x.jsonl", "C:\\x.jsonl", "con.csv",
                                     "a\x00b.csv", "x" * 300 + ".jsonl", "\u202elsnoj.csv", ".bashrc", "a\nb.jsonl", ""])
def test_hostile_names_never_become_paths(ws, tmp_path, hostile):
    src = write_jsonl(tmp_path / "upload.bin", [chat(), chat("q2")])
    info = import_file(ws, src, hostile, origin="shell")
    stored = [p for p in files_under(ws) if "original" in p.parts]
    assert len(stored) == 1 and stored[0].read_bytes() == src.read_bytes()
    assert stored[0].parent == ws.datasets / info["id"] / "original" and stored[0].suffix == ".jsonl"
    name = info["display_name"]
    assert "/" not in name and "\\" not in name and "\x00" not in name and "\u202e" not in name and "\n" not in name
    assert not name.startswith(".") and len(name) <= 120
    # the stored file is named by a random id, never by what was uploaded (the display name could be
    # found inside a random hex name by chance: "ab.jsonl" once was)
    assert re.fullmatch(r"[0-9a-f]{32}", stored[0].stem), stored[0].name
    assert not (tmp_path / "x.jsonl").exists() and not (ws.root.parent / "x.jsonl").exists()


def test_sanitize_examples():
    assert sanitize_name("../../x.jsonl") == "x.jsonl"
    assert sanitize_name("..\\..\\evil.csv") == "evil.csv"
    assert sanitize_name("\u202elsnoj.csv") == "lsnoj.csv"
    assert sanitize_name("   ") == "dataset"
    assert sanitize_name("y" * 300 + ".jsonl").endswith("….jsonl")


def test_original_is_kept_byte_for_byte_and_read_only(ws, tmp_path):
    src = tmp_path / "mine.csv"
    src.write_bytes(b"\xef\xbb\xbfprompt,completion\r\nq,\"a\"\r\n")
    info = import_file(ws, src, "mine.csv", origin="shell")
    orig = info["original_path"]
    assert open(orig, "rb").read() == src.read_bytes() and info["kind"] == "csv"
    assert not os.stat(orig).st_mode & 0o222
    assert info["current_path"] == orig and info["version"] == 0 and not info["can_undo"]
    assert [d["id"] for d in list_datasets(ws)] == [info["id"]]


def test_same_file_twice_is_one_dataset(ws, tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", [chat()])
    a = import_file(ws, src, "a.jsonl", origin="shell")
    b = import_file(ws, src, "b.jsonl", origin="shell")
    assert b["existing"] and b["id"] == a["id"] and len(list_datasets(ws)) == 1


def test_refused_and_incomplete_uploads_leave_nothing(ws, tmp_path):
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"text": "x"}\n'))
    with pytest.raises(InputError, match="compressed"):
        import_file(ws, gz, "d.jsonl.gz", origin="shell")
    src = write_jsonl(tmp_path / "d.jsonl", [chat()])
    with pytest.raises(InputError, match="incomplete"):
        import_file(ws, src, "d.jsonl", expected_size=src.stat().st_size + 100, origin="shell")
    with pytest.raises(InputError, match="the limit is 10 bytes"):  # said "0.0 GB" before
        import_file(ws, src, "d.jsonl", max_bytes=10, origin="shell")
    assert files_under(ws) == [] and list_datasets(ws) == []


def test_ops_make_versions_with_undo_and_training_pins_one(ws, tmp_path):
    from core.workspace import pin_dataset
    rows = [chat(f"q{i}") for i in range(12)]
    info = import_file(ws, write_jsonl(tmp_path / "d.jsonl", rows + rows[:3]), "d.jsonl", origin="shell")
    ds = info["id"]
    assert check_dataset(ws, ds)["duplicates"] == 3
    r = apply_op(ws, ds, "dedupe", origin="shell")
    assert r["changed"] and r["summary"] == "removed 3 duplicate rows (of 15)"
    v1 = current_version_path(ws, ds)
    assert v1.parent.name == "versions" and v1.name.endswith(".jsonl") and v1.is_relative_to(ws.datasets)
    assert v1.stem == r["dataset"]["current_sha256"][:16]
    assert check_dataset(ws, ds)["rows"] == 12
    same = apply_op(ws, ds, "dedupe", origin="shell")
    assert not same["changed"] and "nothing changed" in same["summary"] and same["dataset"]["version"] == 1
    pinned, digest = pin_dataset(ws, str(v1))
    assert pinned == v1.resolve() and digest == r["dataset"]["current_sha256"]
    assert len(load_examples(v1).examples) == 12
    u = undo(ws, ds)
    assert u["summary"] == "undid: removed 3 duplicate rows (of 15)"
    assert str(current_version_path(ws, ds)) == info["original_path"]
    assert v1.exists()  # a job may still be pinned to it
    with pytest.raises(InputError, match="nothing to undo"):
        undo(ws, ds)


def test_split_version_keeps_the_validation_file(ws, tmp_path):
    info = import_file(ws, write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(20)]), "d.jsonl", origin="shell")
    r = apply_op(ws, info["id"], "split", val_fraction=0.25, origin="shell")
    v = r["dataset"]["versions"][-1]
    assert len(load_examples(v["path"]).examples) == 15 and len(load_examples(v["validation"]).examples) == 5


def test_format_settings_feed_checks_and_training(ws, tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("frage,antwort\n" + "".join(f"q{i},a{i}\n" for i in range(12)))
    ds = import_file(ws, src, "d.csv", origin="shell")["id"]
    assert not check_dataset(ws, ds)["ok"]
    set_format(ws, ds, "prompt_completion", {"prompt": "frage", "completion": "antwort"})
    assert check_dataset(ws, ds)["ok"]
    cfg = training_settings(ws, ds)
    assert cfg["dataset_format"] == "prompt_completion" and cfg["column_map"]["prompt"] == "frage"
    assert load_examples(cfg["dataset"], cfg["dataset_format"], cfg["column_map"]).rows == 12
    r = apply_op(ws, ds, "replace", find="q1", replacement="Q1", origin="shell")
    assert r["changed"] and json.loads(open(current_version_path(ws, ds)).readline())["frage"] == "q0"
    with pytest.raises(InputError, match="column_map.question"):
        set_format(ws, ds, "auto", {"question": "frage"})


@pytest.mark.parametrize("bad", ["../x", "ds-zzz", "ds-000000000000", "", None])
def test_unknown_or_hostile_ids(ws, bad):
    with pytest.raises(NotFound):
        get_dataset(ws, bad)


def test_rows_page_and_insight_of_a_dataset(ws, tmp_path):
    from core.data import dataset_rows, insight_dataset
    ds = import_file(ws, write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}") for i in range(30)]), "d.jsonl", origin="shell")["id"]
    page = dataset_rows(ws, ds, start=11, count=5)
    assert [r["row"] for r in page] == [11, 12, 13, 14, 15] and page[0]["record"] == chat("q10")
    apply_op(ws, ds, "edit", row=11, record=chat("edited"), origin="shell")
    assert dataset_rows(ws, ds, 11, 1)[0]["record"] == chat("edited")
    info = insight_dataset(ws, ds, preview=10, origin="shell")
    assert info["rows"] == 30 and info["file"] == "d.jsonl" and "edited" in info["preview"]["segments"][0]["text"]
