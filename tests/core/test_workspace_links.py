"""Symbolic links planted in the workspace (exports/, runs/): listing, sizing and acting on its folders
never follow one out of it, nor into another of its folders."""
from __future__ import annotations

import os

from core.export import list_exports


def test_exports_listing_neither_follows_nor_sizes_links(ws, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "big.bin").write_bytes(b"x" * 100_000)
    (ws.exports / "linked").symlink_to(elsewhere)  # a link to / was walked whole: the listing never came back
    real = ws.exports / "real"
    real.mkdir()
    (real / "model.safetensors").write_bytes(b"y" * 10)
    (real / "file-link").symlink_to(elsewhere / "big.bin")
    (real / "folder-link").symlink_to(elsewhere)
    rows = list_exports(ws)
    assert [(r["name"], r["size_bytes"]) for r in rows] == [("real", 10)]
    assert (elsewhere / "big.bin").stat().st_size == 100_000 and os.path.islink(ws.exports / "linked")


def test_chat_does_not_load_an_export_through_a_link(ws, tmp_path):
    from core.chat import _export_dir
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (ws.exports / "bot").symlink_to(model)
    assert _export_dir(ws, "bot") is None
