"""The live GUI server (`python app.py --port P`) serves only what webui.serving allows: private
workspace files stay unreadable over HTTP, another site's page cannot post to it, and uploads land
inside the workspace."""
from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest

from tests.webui.conftest import live_server

pytestmark = pytest.mark.slow
UNSAID = ("Traceback", "Integer exceeds", "list of choices")  # what no call of these tests may leave in the log


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_model_dir):
    """One live server for this file's tests (starting one is most of each test's time): a workspace with
    the demo model and a settings.yaml that must never be served. None of the tests starts a job or
    changes what the others read. Each test reads the log its own calls wrote (log_since); once the server
    has stopped, its whole log is checked again, so a traceback written after a test's last look still fails."""
    home = tmp_path_factory.mktemp("http") / "home"
    (home / "models").mkdir(parents=True)
    shutil.copytree(demo_model_dir, home / "models" / "danlu-tiny")
    (home / "settings.yaml").write_text("secret: do-not-serve\n")
    with live_server(home) as s:
        yield s
    said = [w for w in UNSAID if w in s.log_text()]
    assert not said, (said, s.log_text()[-3000:])


def log_since(s, start: int) -> str:
    return s.log_text()[start:]


def http(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def multipart(name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "danlu-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_live_gui_serves_nothing_private_and_refuses_other_sites(served):
    s, home = served, served.home
    base = s.url.rstrip("/")
    host = base.split("//", 1)[1]
    # private workspace files: never 200, whatever the spelling
    for private in ("jobs.sqlite", "settings.yaml", "models/danlu-tiny/config.json"):
        for spelling in (str(home / private), str(home / "gui-downloads" / ".." / private)):
            status, body = http(f"{base}/gradio_api/file={quote(spelling)}")
            assert status != 200, (spelling, status)
            assert b"do-not-serve" not in body
    # the GUI's own download folder is served
    (home / "gui-downloads").mkdir(exist_ok=True)
    (home / "gui-downloads" / "ok.csv").write_text("a,b\n1,2\n")
    status, body = http(f"{base}/gradio_api/file={quote(str(home / 'gui-downloads' / 'ok.csv'))}")
    assert status == 200 and body == b"a,b\n1,2\n"
    # a cross-site upload (CVE-2024-1727 style) is refused before Gradio reads it
    body, ctype = multipart("evil.jsonl", b'{"a": 1}\n')
    status, _ = http(f"{base}/gradio_api/upload", body, {"Content-Type": ctype, "Origin": "https://evil.example"})
    assert status == 403
    status, _ = http(f"{base}/gradio_api/upload", body, {"Content-Type": ctype, "Origin": "null"})
    assert status == 403
    # the page's own upload works and lands inside the workspace
    status, reply = http(f"{base}/gradio_api/upload", body, {"Content-Type": ctype, "Origin": f"http://{host}"})
    assert status == 200, reply
    stored = json.loads(reply)[0]
    assert stored.startswith(str(home / "gradio" / "uploads")), stored


def test_a_picker_sent_a_huge_number_is_never_sent_back_as_an_http_500(served):
    """The pickers that take typed values (the job, the chat model, the run to start from) reach their
    handlers as any JSON a direct HTTP call sends. The events that send such a picker back (its choices
    read again: the Train tab's timer and page load, the Chat tab's opening and a language switch, the
    start_adapter picker's tab) echoed 10**30, which Gradio cannot write as JSON: HTTP 500, "Integer exceeds
    64-bit range" and a traceback (found by calling every route). Each event that has such a picker among
    both its inputs and its outputs is called with 10**30 there, the page's own values elsewhere."""
    big = 10**30
    s, start = served, len(served.log_text())
    base = s.url.rstrip("/")
    cfg = json.loads(http(f"{base}/config")[1])
    comps = {c["id"]: c for c in cfg["components"]}

    def typed_picker(i: int) -> bool:
        c = comps[i]
        return c["type"] == "dropdown" and c["props"].get("allow_custom_value") and not c["props"].get("multiselect")
    echoes = [(dep, slot) for dep in cfg["dependencies"] if dep.get("backend_fn")
              for slot, i in enumerate(dep["inputs"]) if typed_picker(i) and i in dep["outputs"]]
    pickers = {comps[dep["inputs"][slot]]["props"].get("elem_id") for dep, slot in echoes}
    assert {"train-job", "chat-model", "cfg-start_adapter"} <= pickers, pickers
    for dep, slot in echoes:
        data = [comps[i]["props"].get("value") for i in dep["inputs"]]
        data[slot] = big
        status, body = http(f"{base}/gradio_api/run/predict", json.dumps({"data": data, "fn_index": dep["id"]}).encode(),
                            {"Content-Type": "application/json"})
        where = (dep.get("api_name"), comps[dep["inputs"][slot]]["props"].get("elem_id"))
        assert status == 200, (where, status, body[:300])
        sent_back = json.loads(body)["data"][dep["outputs"].index(dep["inputs"][slot])]
        assert str(big) not in json.dumps(sent_back), (where, sent_back)
    assert "Integer exceeds" not in log_since(s, start)


def test_a_picker_sent_a_value_not_among_its_choices_is_refused_in_the_pages_words(served):
    """Gradio refused a value not among a picker's choices (only a direct HTTP call sends one) in its own
    English, 'Value: x is not in the list of choices: [...]', with a traceback in the server's log. Every event
    with a picker that takes only its choices is called with a value it does not take there: the refusal is in
    the page's language (Japanese where the event sends it, else English), naming the box, and Gradio's words
    are never sent; the language picker takes a code as the handlers read it ('es-ES' is Spanish)."""
    from core.messages import Msg
    from webui.i18n import say, tr
    s, start = served, len(served.log_text())
    base = s.url.rstrip("/")
    cfg = json.loads(http(f"{base}/config")[1])
    comps = {c["id"]: c for c in cfg["components"]}
    lang_id = next(i for i, c in comps.items() if c["props"].get("elem_id") == "language")

    def only_choices(i: int) -> bool:
        c = comps[i]
        return c["type"] in ("dropdown", "radio", "checkboxgroup") and not c["props"].get("allow_custom_value")

    def call(dep, data):
        status, body = http(f"{base}/gradio_api/run/predict", json.dumps({"data": data, "fn_index": dep["id"]}).encode(),
                            {"Content-Type": "application/json"})
        return status, json.loads(body)
    sent = [(dep, slot) for dep in cfg["dependencies"] if dep.get("backend_fn")
            for slot, i in enumerate(dep["inputs"]) if only_choices(i) and i != lang_id]
    assert {comps[dep["inputs"][slot]]["props"]["elem_id"] for dep, slot in sent} >= \
        {"ds-picker", "ev-run", "ex-run", "ex-formats", "rv-sort", "train-where", "cfg-dataset_format"}
    for dep, slot in sent:
        box = comps[dep["inputs"][slot]]
        lang = "ja" if lang_id in dep["inputs"] else "en"
        data = [lang if i == lang_id else comps[i]["props"].get("value") for i in dep["inputs"]]
        data[slot] = ["no-such-choice"] if box["type"] == "checkboxgroup" else "no-such-choice"
        status, reply = call(dep, data)
        where = (dep.get("api_name"), box["props"]["elem_id"])
        said = str(reply.get("error"))
        assert status == 500 and '"no-such-choice"' in said, (where, status, reply)
        assert say(Msg("page.not_a_choice", value='"no-such-choice"'), lang) in said, (where, said)
        assert tr(json.loads(box["props"]["label"].split("__i18n__", 1)[1])["key"], lang) in said, (where, said)
        assert "list of choices" not in said, (where, said)
    check = next(dep for dep in cfg["dependencies"] if dep.get("api_name") == "check_dataset")
    for code, lang in (("es-ES", "es"), ("fr", "en"), (10**30, "en")):
        data = [code if i == lang_id else comps[i]["props"].get("value") for i in check["inputs"]]
        status, reply = call(check, data)
        assert status == 200 and tr("ds.none", lang) in reply["data"], (code, status, reply)
    log = log_since(s, start)
    assert "list of choices" not in log and "Traceback" not in log, log[-3000:]


def test_a_refused_settings_box_leaves_no_traceback_in_the_server_log(served):
    """A settings box a direct HTTP call sends broken (not JSON, a list) is refused in words;
    the server's log got Gradio's traceback of that refusal each time (noted by a probe of the pickers)."""
    s, start = served, len(served.log_text())
    base = s.url.rstrip("/")
    cfg = json.loads(http(f"{base}/config")[1])
    comps = {c["id"]: c for c in cfg["components"]}
    dep = next(d for d in cfg["dependencies"] if d.get("api_name") == "show_command")
    for box in ("{", "[1, 2]"):
        data = [comps[i]["props"].get("value") for i in dep["inputs"]][:-1] + [box]
        status, body = http(f"{base}/gradio_api/run/predict", json.dumps({"data": data, "fn_index": dep["id"]}).encode(),
                            {"Content-Type": "application/json"})
        assert status == 500 and json.loads(body).get("error"), (box, status, body)
    assert "Traceback" not in log_since(s, start), log_since(s, start)[-3000:]


def test_a_file_box_or_click_sent_what_the_page_never_sends_is_refused_in_words(served):
    """Every file box of every event sent no uploaded file (5, a path, the description of a file outside
    Gradio's upload folder), and every click handler called with no click: Gradio failed before the handler
    (ValidationError, InvalidPathError, TypeError building gr.SelectData), HTTP 500 with a bare "Error" and a
    traceback. Each is refused in the page's words, naming the box (webui.sent_events)."""
    s, start = served, len(served.log_text())
    base = s.url.rstrip("/")
    cfg = json.loads(http(f"{base}/config")[1])
    comps = {c["id"]: c for c in cfg["components"]}
    lang_id = next(i for i, c in comps.items() if c["props"].get("elem_id") == "language")

    def call(dep, data):
        status, body = http(f"{base}/gradio_api/run/predict", json.dumps({"data": data, "fn_index": dep["id"]}).encode(),
                            {"Content-Type": "application/json"})
        return status, str(json.loads(body).get("error"))
    files = [(dep, slot) for dep in cfg["dependencies"] if dep.get("backend_fn")
             for slot, i in enumerate(dep["inputs"]) if comps[i]["type"] in ("file", "uploadbutton")]
    assert {comps[dep["inputs"][slot]]["props"]["elem_id"] for dep, slot in files} >= {"ds-upload", "hp-load", "rv-import"}
    for dep, slot in files:
        data = [("ja" if i == lang_id else comps[i]["props"].get("value")) for i in dep["inputs"]]
        for value in (5, "/etc/passwd", {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}):
            data[slot] = value
            status, said = call(dep, data)
            where = (dep.get("api_name"), comps[dep["inputs"][slot]]["props"]["elem_id"], value)
            words = "このページにアップロードされたファイルではありません" if lang_id in dep["inputs"] else "not a file uploaded to this page"
            assert status == 500 and words in said, (where, status, said)
    # a file's description in a box that takes no file (the dataset id beside the review's import): Gradio's own
    # file check failed first, HTTP 500 with no words and a traceback (the lead's probe after the merges)
    dep = next(d for d in cfg["dependencies"] if d.get("api_name") == "review_import_marks")
    data = [("ja" if i == lang_id else comps[i]["props"].get("value")) for i in dep["inputs"]]
    data[0] = {"text": [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}]}
    status, said = call(dep, data)
    assert status == 500 and "ファイルを受け付けないボックスにファイルが送られました" in said and "/etc/passwd" in said, said
    clicks = [dep for dep in cfg["dependencies"] if dep.get("backend_fn") and any(t[1] == "select" for t in dep["targets"])
              and comps.get(dep["targets"][0][0], {}).get("type") == "dataframe"]
    assert len(clicks) >= 2, clicks  # the job table, the review's findings
    for dep in clicks:
        status, said = call(dep, [comps[i]["props"].get("value") for i in dep["inputs"]])
        assert status == 500 and "the call carries no click" in said, (dep.get("api_name"), status, said)
    log = log_since(s, start)
    assert "Traceback" not in log and "ValidationError" not in log, log[-3000:]
