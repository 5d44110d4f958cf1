"""One trust boundary (core/trust.py): a path, model or config that comes from the page, by any route
(a widget, Load config, a template, a direct call to the HTTP API), is checked in core before any
file is read, and refused with the allowed folders and settings.yaml named; the command line is the
local user's own shell and may name any readable file."""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from core import trust
from core.config import FIELDS, TrainConfig
from core.errors import InputError
from core.workspace import Workspace

HOSTILE = {"file": ["/etc/passwd", "../../../../etc/passwd", "/etc/shadow", "~/.ssh/id_rsa", "datasets/../../x.jsonl"],
           "model": ["/etc", "../../../../etc", "~/.ssh", "/root"],
           "adapter": ["/etc", "../../../../etc", "~/.ssh", "/root", "runs/../../x"]}


def refusal(fn, *args, **kw) -> InputError:
    with pytest.raises(InputError) as e:
        fn(*args, **kw)
    return e.value


def says_how_to_allow(text: str, ws: Workspace) -> bool:
    return str(ws.root) in text and "settings.yaml" in text and "allowed_roots" in text


def test_every_setting_that_names_a_file_or_model_is_checked(ws):
    """Adding a path-valued setting without marking it (path=... in its metadata) fails here."""
    marked = trust.path_fields()
    assert marked == {"dataset": "file", "base_model": "model", "start_adapter": "adapter"}
    looks_like_a_path = {n for n in FIELDS if re.search(r"(path|file|dir|folder|dataset|model|adapter)s?$", n)}
    assert looks_like_a_path <= set(marked), f"mark these in core/config.py with path=...: {looks_like_a_path - set(marked)}"
    ok = TrainConfig(dataset=str(ws.datasets / "d.jsonl"))
    (ws.datasets / "d.jsonl").write_text("{}\n")
    for name, kind in marked.items():
        for value in HOSTILE[kind]:
            e = refusal(trust.check_config, dataclasses.replace(ok, **{name: value}), ws, trust.BROWSER)
            assert [p.where for p in e.problems] == [name], (name, value, str(e))
            assert says_how_to_allow(str(e), ws), str(e)
            # the same config from the command line is the user's own business
            assert trust.check_config(dataclasses.replace(ok, **{name: value}), ws, trust.SHELL).__dict__[name] == value


def test_every_bad_path_is_named_at_once_and_nothing_outside_is_read(ws, tmp_path):
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"text": "root:x:0:0:do-not-show"}\n')
    e = refusal(trust.check_config, TrainConfig(dataset=str(secret), base_model=str(tmp_path)), ws, trust.BROWSER)
    assert {p.where for p in e.problems} == {"dataset", "base_model"}
    assert "do-not-show" not in str(e)


def test_a_loaded_mapping_is_refused_whether_or_not_the_file_exists(ws):
    for value in ("/etc/passwd", "/no/such/file.jsonl"):
        e = refusal(trust.check_values, {"dataset": value, "lora_rank": 8}, ws, trust.BROWSER)
        assert e.problems[0].where == "dataset" and says_how_to_allow(str(e), ws)
    trust.check_values({"dataset": "datasets/new.jsonl"}, ws, trust.BROWSER)  # inside: the settings check judges it


def test_a_long_path_is_quoted_as_its_head_and_its_length(ws):
    """A typed path is the person's value: past the limit it shows its head and how long it was (it
    was cut at 80 characters with no word of its length), and the refusal still says how to allow one."""
    e = refusal(trust.check_file, "/srv/" + "a" * 5000 + ".jsonl", ws, trust.BROWSER, field="dataset")
    text = str(e)
    assert "'/srv/aaaa" in text and "(5,011 characters) is outside the workspace" in text, text[:600]
    assert len(e.problems[0].message) < 300 + len(str(ws.root)) and says_how_to_allow(text, ws)


def test_the_origin_must_be_said():
    with pytest.raises(ValueError, match="origin"):
        trust.check_file("/etc/passwd", None, "gui", field="dataset")


def test_allowed_roots_in_settings_yaml_open_a_folder(ws, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "d.jsonl").write_text("{}\n")
    refusal(trust.check_file, str(shared / "d.jsonl"), ws, trust.BROWSER, field="dataset")
    (ws.root / "settings.yaml").write_text(f"allowed_roots:\n  - {shared}\n")
    assert trust.check_file(str(shared / "d.jsonl"), ws, trust.BROWSER, field="dataset") == str(shared / "d.jsonl")
    assert str(shared) in str(trust.roots_hint(ws))


def test_core_operations_refuse_the_page_s_outside_paths(services, tmp_path):
    """Each core entry point that takes a path or a model from the page checks it itself."""
    from core import chat, data, demos, evaluation, launcher, memory
    ws = services.workspace
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}\n')
    folder = tmp_path / "model"
    folder.mkdir()
    calls = {
        "submit_train": lambda: launcher.submit_train(ws, TrainConfig(dataset=str(outside)), origin=trust.BROWSER),
        "import_file": lambda: data.import_file(ws, outside, origin=trust.BROWSER),
        "apply_op": lambda: data.apply_op(ws, "ds-000000000000", "filter-long", origin=trust.BROWSER, model=str(folder)),
        "insight_dataset": lambda: data.insight_dataset(ws, "ds-000000000000", origin=trust.BROWSER, model=str(folder)),
        "resolve_target": lambda: chat.resolve_target(ws, str(folder), origin=trust.BROWSER),
        "chat adapter": lambda: chat.resolve_target(ws, "builtin:danlu-tiny", str(folder), origin=trust.BROWSER),
        "start_demo": lambda: demos.start_demo(ws, str(folder), origin=trust.BROWSER),
        "submit_eval": lambda: evaluation.submit_eval(ws, "x", origin=trust.BROWSER, dataset=str(outside)),
        "model_shape": lambda: memory.model_shape(str(folder), ws, origin=trust.BROWSER),
    }
    for name, call in calls.items():
        e = refusal(call)
        assert "outside the workspace" in str(e) and says_how_to_allow(str(e), ws), (name, str(e))
    assert services.store.list() == [] and data.list_datasets(ws) == []
    assert demos.list_demos(ws) == []


def test_the_page_s_handlers_refuse_a_server_path_given_as_an_upload(services):
    """Gradio refuses a file input that names a server path; the handlers do not rely on that."""
    from webui import fields
    from webui.context import Gui
    from webui.tabs import dataset_tab, hyperparams_tab
    gui = Gui(services=services)
    out = hyperparams_tab.load_settings(gui, "/etc/passwd", "en")
    assert all(v == fields.gr.skip() for v in out[:-1]) and says_how_to_allow(out[-1], services.workspace)
    out = dataset_tab.upload_and_check(gui, "/etc/passwd", "auto", "", "en")
    assert "outside the workspace" in out[2] and "root:x:0:0" not in json.dumps(out, default=str)
    assert data_sets(services) == []


def data_sets(services) -> list:
    from core import data
    return data.list_datasets(services.workspace)


# ---- the live app, called without the page --------------------------------------------------------
def call(client, api_name: str, *args):
    """The endpoint's answer as text, or the error Gradio itself gave (also a refusal)."""
    try:
        return json.dumps(client.predict(*args, api_name=api_name), ensure_ascii=False, default=str)
    except Exception as e:  # gradio_client raises AppError for a value the component itself refuses
        return f"GRADIO-REFUSED {type(e).__name__}: {e}"


def raw_call(url: str, api: str, data: list) -> str:
    """POST /gradio_api/call/API, then read its event stream: the answer or the error, as text."""
    import httpx
    r = httpx.post(f"{url.rstrip('/')}/gradio_api/call/{api}", json={"data": data}, timeout=30)
    if r.status_code != 200:
        return f"GRADIO-REFUSED HTTP {r.status_code}: {r.text}"
    events = httpx.get(f"{url.rstrip('/')}/gradio_api/call/{api}/{r.json()['event_id']}", timeout=60).text
    return events if "event: complete" in events else f"GRADIO-REFUSED {events}"


@pytest.mark.slow
def test_the_http_api_refuses_hostile_paths_on_every_endpoint_and_creates_nothing(home, tmp_path):
    from gradio_client import Client, handle_file

    from core.config import to_dict
    from core.presets import compose
    from tests.webui.conftest import live_server
    ws = Workspace.open(home)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text('{"hidden_size": 64}')
    settings = dict(compose("demo"))
    hostile_settings = [dict(settings, dataset="/etc/passwd"), dict(settings, dataset="../../../../etc/passwd"),
                        dict(settings, dataset="/etc/shadow"), dict(settings, base_model=str(outside))]
    hostile_config = tmp_path / "hostile.yaml"
    hostile_config.write_text("dataset: /etc/passwd\nlora_rank: 8\n")
    with live_server(home) as s:
        client = Client(s.url, verbose=False)
        answers = {}
        for i, cfg in enumerate(hostile_settings):
            box = json.dumps({k: v for k, v in cfg.items()})
            answers[f"start_training {i}"] = call(client, "/start_training", "en", ["cpu"], 2, box)
            answers[f"start_training_slurm {i}"] = call(client, "/start_training_slurm", "en", 2, "debug", 1, 0,
                                                         "00:10:00", False, box)
            answers[f"show_command {i}"] = call(client, "/show_command", "en", ["cpu"], 1, box)
            answers[f"save_config {i}"] = call(client, "/save_config", "en", box)
        answers["load_config"] = call(client, "/load_config", handle_file(str(hostile_config)), "en",
                                      json.dumps(to_dict(TrainConfig(**settings))))
        answers["use_custom_model"] = call(client, "/use_custom_model", str(outside), "en")
        answers["check_dataset"] = call(client, "/check_dataset", "", "/etc/passwd", "auto", "", "en")
        answers["clean_filter_long"] = call(client, "/clean_filter_long", "ds-000000000000", str(outside), 64, "auto", "en")
        asked = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
        answers["chat_send"] = call(client, "/chat_send", "en", str(outside), "", False, "", 0.0, 1.0, 16, 1.0, asked, [])
        answers["chat_send adapter"] = call(client, "/chat_send", "en", "builtin:danlu-tiny", str(outside), False, "",
                                            0.0, 1.0, 16, 1.0, asked, [])
        answers["share_demo"] = call(client, "/share_demo", "en", str(outside), "", "", "127.0.0.1", None, "", "", False)
        answers["run_evaluation"] = call(client, "/run_evaluation", "en", str(outside), 10, 16)
        answers["merge_export"] = call(client, "/merge_export", "en", "../../x", "../../etc", "bf16")
        # a file input given a path on the server instead of an upload (what gradio_client never sends)
        for api in ("upload_dataset", "load_config"):
            server_file = {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}, "orig_name": "passwd"}
            args = [server_file, "auto", "", "en"] if api == "upload_dataset" else [server_file, "en", "{}"]
            answers[f"{api} server path"] = raw_call(s.url, api, args)
    for name, text in answers.items():
        assert "root:x:0:0" not in text and "hidden_size" not in text, (name, text)
        if not text.startswith("GRADIO-REFUSED"):
            assert re.search(r"outside the workspace|contains '..'|not a usable|is a path|no training job", text), (name, text)
        if not text.startswith("GRADIO-REFUSED") and name.startswith((
                "start_training", "load_config", "use_custom_model", "check_dataset", "clean_", "show_command",
                "save_config")):
            assert says_how_to_allow(text, ws), (name, text)
    from core import jobs as J
    assert J.JobStore(ws.db_path).list() == []
    assert not (home / "datasets" / "pinned").exists() and not list((home / "datasets").glob("ds-*"))
    assert not list((home / "gui-downloads").glob("*.yaml")) if (home / "gui-downloads").exists() else True
