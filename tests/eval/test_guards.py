"""Fast checks of the guards around evaluation, export and chat: names, pickles, GPUs held by jobs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import jobs as J
from core.errors import InputError


@pytest.mark.parametrize("name", ["", "   ", "..", ".", "../x", "a/../../b", "/etc/passwd", "C:\\x", "a\\b", "a\x00b",
                                  ".hidden", "-rf", "x" * 101, "name.partial", "a b", "x;touch pwned", "$(id)"])
def test_export_names_that_are_paths_or_odd_are_refused(name, home):
    from core.export import check_export_name, export_path
    from core.workspace import Workspace
    with pytest.raises(InputError):
        check_export_name(name)
    with pytest.raises(InputError):
        export_path(Workspace.open(home), name)


@pytest.mark.parametrize("name", ["support-bot", "bot_v1.2", "丹炉-1", "A"])
def test_plain_export_names_stay_inside_exports(name, home):
    from core.export import export_path
    from core.workspace import Workspace
    ws = Workspace.open(home)
    assert export_path(ws, name).parent == ws.exports.resolve()


def test_submit_merge_lists_every_problem_at_once(services):
    from core.export import submit_merge
    with pytest.raises(InputError) as e:
        submit_merge(services.workspace, "whatever", "../up", origin="browser", dtype="int3", max_shard_size="lots")
    wheres = [p.where for p in e.value.problems]
    assert wheres == ["name", "dtype", "max_shard_size"]


def test_pickle_only_adapters_are_refused(tmp_path):
    from core.runs import check_adapter_dir
    d = tmp_path / "adapter"
    d.mkdir()
    (d / "adapter_config.json").write_text("{}")
    (d / "adapter_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(InputError, match="pickle files can run code"):
        check_adapter_dir(d)
    (d / "adapter_model.safetensors").write_bytes(b"")
    assert check_adapter_dir(d) == d.resolve()


def fake_job(services, state, gpus, kind="train"):
    store = services.store
    job = store.create(kind=kind, name="x", run_dir=str(services.workspace.runs / "x"), gpus=gpus)
    if state != J.QUEUED:
        store.transition(job.id, J.STARTING)
    if state == J.RUNNING:
        store.transition(job.id, J.RUNNING)
    return store.get(job.id)


def test_chat_refuses_a_gpu_that_a_running_training_job_holds(services, monkeypatch):
    import core.chat as chat
    monkeypatch.setattr(chat, "detect_gpus", lambda: [{"index": 0}, {"index": 1}])
    ws = services.workspace
    assert chat.choose_device(ws) == ("cuda:0", [])
    job = fake_job(services, J.RUNNING, [0])
    assert chat.choose_device(ws) == ("cuda:1", [])  # the free GPU
    with pytest.raises(InputError) as e:
        chat.choose_device(ws, "cuda:0")
    assert job.id in str(e.value) and "GPU 0" in str(e.value) and "chat on the CPU" in str(e.value)
    fake_job(services, J.RUNNING, [1])
    with pytest.raises(InputError, match="every GPU"):
        chat.choose_device(ws)
    assert chat.choose_device(ws, "cpu") == ("cpu", [])
    fake_job(services, J.QUEUED, [0, 1])  # a queued job holds nothing yet
    with pytest.raises(InputError):
        chat.choose_device(ws)


def test_chat_on_a_cpu_machine_loads_while_training_but_says_it_is_slower(services, monkeypatch):
    import core.chat as chat
    monkeypatch.setattr(chat, "detect_gpus", lambda: [])
    assert chat.choose_device(services.workspace) == ("cpu", [])
    fake_job(services, J.RUNNING, ["cpu"])
    dev, notes = chat.choose_device(services.workspace)
    assert dev == "cpu" and "more slowly" in notes[0]
    with pytest.raises(InputError, match="no NVIDIA GPU"):
        chat.choose_device(services.workspace, "cuda:0")


@pytest.mark.parametrize("gpus", [[], [{"index": 0}]])
def test_a_device_that_is_no_device_is_said_as_typed_on_any_machine(services, monkeypatch, gpus):
    """chat --device $'x\\ny' on a machine without a GPU was said as "x<newline>y was asked for, but this machine
    has no NVIDIA GPU" (the text unchecked, a line of its own in the message); "tpu:0" with a GPU as cuda:0."""
    import core.chat as chat
    monkeypatch.setattr(chat, "detect_gpus", lambda: gpus)
    for device in ("x\ny", "cuda:0x", "tpu:0", "gpu", "cuda:", "", "cuda:-1"):
        with pytest.raises(InputError) as e:
            chat.choose_device(services.workspace, device)
        assert "is not a device" in str(e.value) and repr(device) in str(e.value) and "x\ny" not in str(e.value)


def test_chat_target_resolution(services, tmp_path):
    from core.chat import resolve_target
    ws = services.workspace
    t = resolve_target(ws, "builtin:danlu-tiny", origin="shell")
    assert t.adapter is None and Path(t.model).name == "danlu-tiny" and t.local
    export = ws.exports / "my-bot"
    export.mkdir()
    (export / "config.json").write_text("{}")
    (export / "danlu_export.json").write_text(json.dumps({"trust_remote_code": False}))
    assert resolve_target(ws, "my-bot", origin="shell").model == str(export.resolve())
    adapter = tmp_path / "ad"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (adapter / "danlu.json").write_text(json.dumps({"base_model": "builtin:danlu-tiny", "chat_template": "chatml"}))
    t = resolve_target(ws, None, str(adapter), origin="shell")  # the base comes from the adapter's danlu.json
    assert t.adapter == str(adapter.resolve()) and Path(t.model).name == "danlu-tiny" and t.template == "chatml"
    with pytest.raises(InputError, match="template"):
        resolve_target(ws, "builtin:danlu-tiny", template="llama9", origin="shell")
    running = fake_job(services, J.RUNNING, ["cpu"])
    with pytest.raises(InputError, match="no finished adapter"):
        resolve_target(ws, running.id, origin="shell")


def test_demo_exposure_rules():
    from core.demos import check_exposure
    from core.exposure import parse_auth
    check_exposure("127.0.0.1", False, None)
    check_exposure("localhost", False, None)
    check_exposure("::1", False, None)
    check_exposure("0.0.0.0", True, ("a", "b"))
    for host, share in [("0.0.0.0", False), ("10.0.0.5", False), ("127.0.0.1", True), ("::", False)]:
        with pytest.raises(InputError):
            check_exposure(host, share, None)
    assert parse_auth("ann:pa:ss") == ("ann", "pa:ss")
    with pytest.raises(InputError):
        parse_auth("ann")


def test_eval_csv_keeps_answers_as_text_in_spreadsheets():
    pytest.importorskip("torch")
    from core.recipes.evaluate import CSV_COLUMNS, csv_cell, to_csv
    assert csv_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_cell("-1+2") == "'-1+2" and csv_cell("fine") == "fine" and csv_cell(0.1234567891) == 0.123457
    row = {c: "x" for c in CSV_COLUMNS}
    row.update(tuned="@SUM(A1)", base_rouge_l=0.5)
    text = to_csv([row])
    assert text.startswith("\ufeff" + ",".join(CSV_COLUMNS)) and "'@SUM(A1)" in text


def test_eval_samples_come_from_the_last_assistant_turn():
    pytest.importorskip("torch")
    from core.recipes.evaluate import to_sample
    s = to_sample({"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye?"},
                                {"role": "assistant", "content": "Goodbye."}]})
    assert s["reference"] == "Goodbye." and len(s["messages"]) == 4 and s["prompt"].endswith("user: Bye?")
    assert to_sample({"text": "a document"}) is None
    assert to_sample({"messages": [{"role": "assistant", "content": "x"}]}) is None


def test_read_eval_and_table(tmp_path):
    from core.evaluation import read_eval, read_probes, summary_line, table_rows
    from webui.tabs.evaluate_tab import TABLE_KEYS
    assert read_eval(tmp_path) is None and table_rows(None) == [] and read_probes(tmp_path) == []
    report = dict(eval_loss=0.5, perplexity=1.65, base_eval_loss=7.0, n_samples=1,
                  metrics=dict(base=dict(rouge_l=0.0, bleu=0.0, exact_match=0.0),
                               tuned=dict(rouge_l=1.0, bleu=1.0, exact_match=1.0)),
                  samples=[dict(prompt="p", reference="r", base="b", tuned="r", base_rouge_l=0.0, tuned_rouge_l=1.0,
                                base_bleu=0.0, tuned_bleu=1.0, base_exact=False, tuned_exact=True)])
    (tmp_path / "eval.json").write_text(json.dumps(report))
    assert read_eval(tmp_path) == report
    [row] = table_rows(report)
    assert len(row) == len(TABLE_KEYS) and row[-1] == "yes" and row[-2] == "no"
    assert "0.000 -> 1.000" in summary_line(report) and "0% -> 100%" in summary_line(report)
    (tmp_path / "probes.jsonl").write_text('{"step": 5, "prompt": "p", "answer": "a"}\n{"step": 10, "prom')
    assert read_probes(tmp_path) == [{"step": 5, "prompt": "p", "answer": "a"}]


def test_the_evaluations_notes_are_said_in_the_pages_language():
    """The notes under the results ("only the first 3 of 12 held-out prompts were answered") were English
    sentences in eval.json, shown as they were on every page: now codes, with the English kept for the
    CLI; a report of an older Danlu (English only) still shows its notes as they are."""
    pytest.importorskip("torch")
    from core.messages import keep_all
    from core.recipes.evaluate import notes, pair_notes
    from webui.i18n import say
    from webui.tabs.evaluate_tab import summary_markdown
    chat = {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]}
    said = notes([{"text": "a document"}] + [chat] * 12, [], 3) + pair_notes([chat] * 4, {"pairs": 3})
    report = dict(eval_loss=0.5, n_samples=3, metrics=dict(base={}, tuned={}), **keep_all("notes", said))
    assert report["notes"] == ["1 plain-text example has no prompt/answer pair: it counts in the loss only",
                               "only the first 3 of 12 held-out prompts were answered",
                               "1 held-out pair has no answer token left within max_seq_length: it is not scored"]
    for lang in ("ja", "ko", "zh-CN", "es"):
        shown = summary_markdown(report, lang)
        assert all(say(m, lang) in shown for m in said) and not any(n in shown for n in report["notes"]), shown
    older = dict(report, notes_msg=None, notes=["only the first 3 of 12 held-out prompts were answered"])
    assert "only the first 3 of 12 held-out prompts were answered" in summary_markdown(older, "ja")


def test_evaluation_and_export_jobs_are_named_without_an_english_word(services, monkeypatch):
    """They were "eval <run>" and "export <name>" on every page: now the run's and the export's name, and
    the job table's kind column says what they are in the page's language."""
    from core import launcher
    from core.evaluation import submit_eval
    from core.export import submit_merge
    from webui.i18n import CODES, tr
    from webui.tabs import train_tab
    from webui.context import Gui
    monkeypatch.setattr(launcher, "schedule", lambda ws: None)  # queued, never started
    ws, store = services.workspace, services.store
    train = store.create(kind="train", name="support-bot", run_dir=str(ws.runs / "support-bot"))
    assert store.transition(train.id, J.STARTING) and store.transition(train.id, J.SUCCEEDED)
    adapter = ws.runs / "support-bot" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (adapter / "danlu.json").write_text(json.dumps({"base_model": "builtin:danlu-tiny"}))
    assert submit_eval(ws, train.id, origin="shell").name == "support-bot"
    assert submit_merge(ws, train.id, "bot-v1", origin="shell").name == "bot-v1"
    gui = Gui(services=services)
    for lang in CODES:
        table = train_tab.refresh_jobs(gui, lang, train.id, "")[0]
        rows = sorted(zip(table.iloc[:, 1], table.iloc[:, 2]))
        assert rows == sorted((name, tr(f"jobs.kind.{kind}", lang)) for name, kind in
                              (("support-bot", "train"), ("support-bot", "eval"), ("bot-v1", "merge"))), rows
    assert not {"eval", "merge", "train"} & set(table.iloc[:, 2])


def test_a_stop_that_lands_in_a_finaliser_still_stops_the_export(monkeypatch):
    """Ctrl-C on `python app.py merge` (a Stop) sent SIGTERM while the merge ran regex's Group.__del__:
    Python printed the handler's Cancelled as 'Exception ignored in ...' and dropped it, and the export
    went on to Succeeded, exit code 0 (found by interrupting a merge from the shell)."""
    import signal

    from core.recipes import merge
    monkeypatch.setattr(merge, "STOP", {"signum": None}, raising=False)  # this test's Stop ends with it

    class Finalised:
        def __del__(self):
            merge._on_sigterm(signal.SIGTERM, None)
    Finalised()  # Python reports the exception raised inside __del__ and goes on, as it did in regex's
    with pytest.raises(merge.Cancelled):
        merge.Progress(None)("saving")


def test_an_export_folder_whose_partial_name_is_taken_is_refused_and_left_alone(services, tmp_path):
    """`python app.py merge JOB ~/out` writes ~/out.partial first, and the export removed any folder of that
    name before writing: a folder of the user's there was deleted with its files (found probing the CLI)."""
    from core.export import submit_merge
    mine = tmp_path / "out.partial"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    with pytest.raises(InputError) as e:
        submit_merge(services.workspace, "whatever", str(tmp_path / "out"), origin="shell")
    assert "out.partial already exists" in str(e.value) and "move or delete it" in str(e.value)
    assert (mine / "thesis.txt").read_text() == "precious" and services.store.list() == []


def test_an_export_whose_partial_folder_is_a_link_is_refused_in_words_before_the_job(services, tmp_path, monkeypatch):
    """exports/<name>.partial made a symbolic link: the job started, stopped at the link (nothing deleted
    through it, which is right) and ended with a bare "FileExistsError: [Errno 17] File exists"."""
    from types import SimpleNamespace
    from core.export import submit_merge
    from core.recipes import merge
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thesis.txt").write_text("precious")
    link = services.workspace.exports / "bot.partial"
    link.symlink_to(elsewhere)
    for origin in ("browser", "shell"):  # the shell's plain name is the page's
        with pytest.raises(InputError) as e:
            submit_merge(services.workspace, "whatever", "bot", origin=origin)
        assert f"{link} is a symbolic link to {elsewhere}" in str(e.value) and f"rm {link}" in str(e.value)
    assert services.store.list() == []
    # a link made after the job was queued: the job refuses it in the same words before it writes
    monkeypatch.setattr(merge, "check_adapter_dir", lambda adapter: adapter)
    with pytest.raises(InputError) as e:
        merge.export(tmp_path / "adapter", services.workspace.exports / "bot", SimpleNamespace(formats="lora"), None)
    assert f"{link} is a symbolic link" in str(e.value)
    assert link.is_symlink() and (elsewhere / "thesis.txt").read_text() == "precious"


def test_an_export_folder_in_a_place_no_folder_can_be_made_is_refused_before_the_job(services):
    """/proc/x passed (its parent is a folder) and the job failed after the merge with a traceback:
    "FileNotFoundError: '/proc/x.partial'", said as "The training process stopped with an error"."""
    from core.export import submit_merge
    with pytest.raises(InputError) as e:
        submit_merge(services.workspace, "whatever", "/proc/danlu-export", origin="shell")
    assert "no folder can be made in /proc" in str(e.value) and "name a folder you may write in" in str(e.value)
    assert services.store.list() == []


def test_a_system_prompt_an_ollama_modelfile_cannot_quote_is_refused_before_the_job(services):
    """A system prompt with three double quotes in a row passed, and the export failed at its last step,
    after the merge and the GGUF files, with a traceback: 'TemplateError: ... contains \"\"\"' (found probing
    `merge --format ollama --system`). Without the Ollama format the prompt only goes into the model card."""
    from core.errors import NotFound
    from core.export import submit_merge
    with pytest.raises(InputError) as e:
        submit_merge(services.workspace, "whatever", "bot", origin="browser", formats="ollama", system='say """hi"""')
    assert [p.where for p in e.value.problems] == ["system"] and "Ollama Modelfile" in str(e.value)
    with pytest.raises(NotFound):  # the prompt passes; the run is what is missing
        submit_merge(services.workspace, "whatever", "bot", origin="browser", formats="lora", system='say """hi"""')


@pytest.mark.parametrize("size", ["0GB", "00MB", "0KB"])
def test_a_shard_size_of_nothing_is_refused(services, size):
    """--max-shard-size 0GB passed and the export wrote each tensor into a file of its own (29 files for the
    demo model, thousands for an 8B one)."""
    from core.export import submit_merge
    with pytest.raises(InputError) as e:
        submit_merge(services.workspace, "whatever", "bot", origin="shell", max_shard_size=size)
    assert [p.where for p in e.value.problems] == ["max_shard_size"], e.value


def test_an_eval_dataset_that_is_no_file_is_said_with_what_it_is_and_what_to_do(services, tmp_path):
    """`eval JOB --dataset X` said "file not found: " for an empty X (no path at all), a folder and a pipe,
    and never what to do (found probing the CLI)."""
    import os

    from core.evaluation import submit_eval
    os.mkfifo(tmp_path / "pipe")
    for given, said in (("", "no file given"), (str(tmp_path), "is a folder, not a file"),
                        (str(tmp_path / "pipe"), "is not a regular file"), (str(tmp_path / "gone.jsonl"), "file not found")):
        with pytest.raises(InputError) as e:
            submit_eval(services.workspace, "whatever", origin="shell", dataset=given)
        assert said in str(e.value) and "leave out --dataset" in str(e.value), (given, str(e.value))
    assert services.store.list() == []


@pytest.mark.parametrize("recipe", ["merge", "evaluate"])
def test_a_crashed_export_or_evaluation_is_not_said_as_training_nor_sent_to_retry(recipe, tmp_path, monkeypatch):
    """An export that crashed (a folder it could not make, a Modelfile it could not write) was recorded as 'The
    training process stopped with an error ... press Retry': Retry is for training jobs only (found probing
    `merge JOB /proc/x`)."""
    import importlib

    from core.rundir import RunDir, read_json
    mod = importlib.import_module(f"core.recipes.{recipe}")

    def crash(*a, **k):
        raise RuntimeError("boom")
    if recipe == "merge":
        monkeypatch.setattr(mod, "export", crash)
        argv = ["--adapter", str(tmp_path), "--out", str(tmp_path / "out"), "--result", str(tmp_path / "result.json")]
    else:
        monkeypatch.setattr(mod, "evaluate_run", crash)
        argv = ["--trained-run", str(tmp_path), "--eval-dir", str(tmp_path)]
    with pytest.raises(RuntimeError):
        mod.main(argv)
    said = read_json(RunDir(tmp_path).error)
    work = "export" if recipe == "merge" else "evaluation"
    assert f"The {work} stopped with an error: RuntimeError: boom" in said["message"], said
    assert "Retry" not in said["hint"] and f"start the {work} again" in said["hint"], said


def test_a_run_whose_adapter_names_no_base_model_is_refused_in_words(services):
    """A run folder whose adapter/danlu.json is gone or unreadable gave the base model "", read as a folder:
    the export's process looked in its working directory, outside the workspace, and failed with
    "/work/... has no config.json ... Fix the listed rows in the Dataset tab" (found probing `merge runs/X`)."""
    from core.runs import resolve_trained_run
    adapter = services.workspace.runs / "by-hand" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    for info in (None, '{"base_model": 5', '{"base_model": ""}', '{"base_model": 7}'):
        if info is not None:
            (adapter / "danlu.json").write_text(info)
        with pytest.raises(InputError) as e:
            resolve_trained_run(services.workspace, str(adapter.parent))
        assert "danlu.json is missing or unreadable" in str(e.value) and "train the run again" in str(e.value), info
    (adapter / "danlu.json").write_text('{"base_model": "builtin:danlu-tiny"}')
    assert resolve_trained_run(services.workspace, str(adapter.parent)).base_model == "builtin:danlu-tiny"


def test_an_export_refused_inside_its_job_is_not_sent_to_the_dataset_tab(tmp_path):
    """An export job that found its folder taken or its adapter unusable said 'Fix the listed rows in the
    Dataset tab or with check-data': an export has no rows (found probing `merge` with a hand-made run)."""
    from core.engine.common import classify
    from core.errors import Problem
    from core.messages import Msg
    refused = InputError(problems=[Problem("name", Msg("export.out_exists", path="/x"), Msg("export.out_exists.hint"))])
    assert "start the export again" in classify(refused, work="export")["hint"]
    assert "Dataset tab" in classify(refused, work="eval")["hint"]  # an evaluation's are its data's
