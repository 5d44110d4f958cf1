"""Hostile uploads and hostile references, end to end (reliability.md a and d.1). The data studio's
own tests cover archive sniffing and hostile names in depth (tests/data); these add the paths a
browser takes and what the data studio does not see: a bomb disguised by its name, URLs typed as a
dataset or a model (checked against a listening server that would see any fetch), and a model
whose chat template attacks the Dataset tab's preview.
"""
from __future__ import annotations

import gzip
import http.server
import io
import json
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest

from core.config import TrainConfig
from core.errors import InputError
from core.workspace import REPO_ROOT, Workspace

DEMO = REPO_ROOT / "presets" / "templates" / "data" / "demo.jsonl"
BOMB_BYTES = 200 << 20  # what the bombs below would expand to


def zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open("data.jsonl", "w", force_zip64=True) as member:
            chunk = b"0" * (1 << 20)
            for _ in range(BOMB_BYTES >> 20):
                member.write(chunk)
    return buf.getvalue()


def gzip_bomb() -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as g:
        chunk = b'{"text": "' + b"0" * (1 << 20) + b'"}\n'
        for _ in range(BOMB_BYTES >> 20):
            g.write(chunk)
    return buf.getvalue()


def disk_use(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bombs")
    out = {}
    for name, data in (("bomb.zip", zip_bomb()), ("innocent.jsonl", zip_bomb()), ("rows.csv", gzip_bomb()),
                       ("rows.jsonl.gz", gzip_bomb())):
        (d / name).write_bytes(data)
        out[name] = d / name
    assert all(p.stat().st_size < BOMB_BYTES // 50 for p in out.values())  # really bombs: ratio over 50
    return out


@pytest.mark.parametrize("name", ["bomb.zip", "innocent.jsonl", "rows.csv", "rows.jsonl.gz"])
def test_bombs_are_refused_without_expanding(home, bombs, name):
    from core.data.store import import_file
    ws = Workspace.open(home)
    before = disk_use(ws.root)
    t0 = time.time()
    with pytest.raises(InputError) as e:
        import_file(ws, bombs[name], name, origin="shell")
    assert any(w in str(e.value).lower() for w in ("zip", "gzip", "compressed", "archive")), str(e.value)
    assert time.time() - t0 < 30
    assert disk_use(ws.root) - before < 1 << 20  # nothing was unpacked, and the refused copy is gone
    assert not any(ws.datasets.glob("ds-*"))


# ---- URLs where a file is expected: nothing is ever fetched ---------------------------------------
@pytest.fixture
def listener():
    """A local web server that records every request: a fetch of any URL below would show here."""
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"messages": []}\n')

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def ssrf_urls(base: str) -> list[str]:
    return [f"{base}/latest/meta-data/", f"{base}/data.jsonl", base.replace("127.0.0.1", "localhost") + "/x.jsonl",
            "http://169.254.169.254/latest/meta-data/", "http://[::1]/x", "http://2130706433/x", "file:///etc/passwd",
            "s3://bucket/data.jsonl", "hf://datasets/owner/name"]


def test_urls_as_dataset_or_model_are_refused_and_never_fetched(home, listener, tmp_path):
    from core.config import validate
    from core.data.insight import insight
    from core.models import resolve_model
    from core import trust
    base, hits = listener
    ws = Workspace.open(home)
    for url in ssrf_urls(base):
        assert any(p.where == "dataset" and "web address" in p.message for p in validate(TrainConfig(dataset=url)))
        with pytest.raises(InputError, match="download it first"):
            trust.check_config(TrainConfig(dataset=url), ws, trust.BROWSER)
        with pytest.raises(InputError):
            trust.check_config(TrainConfig(dataset=str(DEMO), base_model=url), ws, trust.BROWSER)
        with pytest.raises(InputError):
            resolve_model(url, ws)
        with pytest.raises(InputError):
            insight(DEMO, model=url, ws=ws)
    assert hits == [], hits


# ---- a model whose chat template attacks the preview -------------------------------------------------
def test_hostile_template_in_the_dataset_preview_is_reported(home, demo_model_dir, tmp_path):
    from core.data.insight import insight
    from tests.security.test_loading import HOSTILE_TEMPLATES
    ws = Workspace.open(home)
    marker, secret = tmp_path / "PWNED", tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    for name, template in HOSTILE_TEMPLATES.items():
        model = ws.models / f"hostile-{name}"
        shutil.copytree(demo_model_dir, model)
        (model / "chat_template.jinja").write_text(template.replace("MARKER", str(marker)).replace("SECRET", str(secret)))
        info = insight(DEMO, model=str(model), ws=ws)
        err = info["template_error"]
        assert err and err["count"] >= 1 and "hint" in err, (name, info)
        assert "TOP-SECRET" not in json.dumps(info, default=str)
    assert not marker.exists()
