"""The tabs' handlers, called directly with plain values (no browser, no server)."""
import json
import time
from functools import partial
from pathlib import Path

import gradio as gr
import pytest

from core import jobs as J
from core.config import load_config
from core.errors import InputError
from core.memory import Shape
from core.memory import model_shape
from core.presets import compose
from webui import fields, jobview
from webui.i18n import tr
from webui.tabs import hyperparams_tab as hp
from webui.tabs import templates_tab as tpl
from webui.tabs import train_plots as tp
from webui.tabs import train_tab as tt

class FakeGui:
    """The page's context with the GPUs a test chooses."""

    def __init__(self, gui, gpus):
        self.ws, self._gpus = gui.ws, gpus

    def gpus(self):
        return self._gpus


def demo_values() -> list:
    return fields.config_values(compose("demo"), fields.NAMES)


# ---- templates -------------------------------------------------------------------------------
def test_choosing_a_template_fills_model_recipe_format_and_sample_data(gui):
    out = tpl.apply_template(gui, "support-bot", "en")
    values, (recipe, note) = dict(zip(fields.NAMES, out)), out[len(fields.NAMES):len(fields.NAMES) + 2]
    assert values["base_model"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert values["dataset_format"] == "messages" and Path(values["dataset"]).is_file()
    assert recipe == "balanced" and "support-bot" in note


def test_a_template_sends_only_the_settings_that_change(gui):
    demo = demo_values()
    out = tpl.apply_template(gui, "support-bot", "en", *demo)[:len(fields.NAMES)]
    sent = {n: v for n, v in zip(fields.NAMES, out) if v != gr.skip()}
    full = dict(zip(fields.NAMES, tpl.apply_template(gui, "support-bot", "en")))
    assert sent == {n: v for n, v in full.items() if v != dict(zip(fields.NAMES, demo))[n]}
    assert "base_model" in sent and 0 < len(sent) < len(fields.NAMES)
    assert all(v == gr.skip() for v in tpl.apply_template(gui, "demo", "en", *demo)[:len(fields.NAMES)])  # nothing to change


def test_cards_say_what_a_template_needs_in_either_language():
    en = tpl.render_cards("en")
    zh = tpl.render_cards("zh-CN")
    assert len(en) == len(tpl.templates()) and tpl.templates()[0].name == "demo"
    assert "Time:" in en[0] and "Memory:" in en[0] and "danlu-tiny" in en[0]
    assert "耗时" in zh[0] and "__i18n__" not in zh[0]


def test_model_picker_lists_presets_and_describes_free_input(gui, tmp_path):
    values = [v for _, v in tpl.model_choices()]
    assert "builtin:danlu-tiny" in values and "Qwen/Qwen2.5-7B-Instruct" in values
    assert "danlu-tiny" in tpl.describe_model(gui, "builtin:danlu-tiny", "en")
    assert "hub" in tpl.describe_model(gui, "someone/some-model", "en")
    assert "not found" in tpl.describe_model(gui, str(gui.ws.root / "nothing"), "en")
    outside = tpl.describe_model(gui, str(tmp_path / "nothing"), "en")  # never looked at: outside the workspace
    assert "outside the workspace" in outside and "settings.yaml" in outside
    assert all(v == gr.skip() for v in tpl.use_custom_model(gui, "  "))
    model, info = tpl.use_custom_model(gui, "a/b", "en")
    assert model["value"] == "a/b" and "a/b" in info


# ---- hyperparameters -------------------------------------------------------------------------
def test_validation_names_the_setting_in_the_page_language(gui):
    values = dict(zip(fields.NAMES, demo_values()), lora_rank=0)
    en = hp.validate_settings(gui, "en", *[values[n] for n in fields.NAMES])
    zh = hp.validate_settings(gui, "zh-CN", *[values[n] for n in fields.NAMES])
    assert "LoRA rank" in en and "lora_rank" in en and "at least" in en
    assert "LoRA 秩" in zh
    assert "valid" in hp.validate_settings(gui, "en", *demo_values())


def test_a_long_value_is_quoted_short_in_every_route_of_the_page(gui, uploads):
    """The widgets' check, Load config and the settings box (a direct HTTP call sends anything)
    echoed a 100,000-character value whole; now its head and its length, in the page's language."""
    values = dict(zip(fields.NAMES, demo_values()), lora_rank="[" * 100_000)
    zh = hp.validate_settings(gui, "zh-CN", *[values[n] for n in fields.NAMES])
    assert len(zh) < 400 and "LoRA 秩" in zh and "'[[[[[" in zh and "100,000" in zh, zh[:500]
    big = uploads / "big.yaml"
    big.write_text("lora_rank: '" + "[" * 100_000 + "'\n")
    note = hp.load_settings(gui, str(big), "en")[-1]
    assert len(note) < 400 and "LoRA rank" in note and "'[[[[[" in note and "100,000 characters" in note, note[:500]
    box = fields.with_settings(lambda *v: "ok")
    with pytest.raises(gr.Error) as e:
        box('{"' + "k" * 100_000 + '": 1}')
    assert len(str(e.value)) < 400 and "kkkkk" in str(e.value), str(e.value)[:500]


def test_a_number_too_large_to_hold_is_outside_its_bounds_in_every_route_of_the_page(gui, uploads):
    """A 500-digit learning rate stopped the settings check with OverflowError (no float holds it); a
    5,000-digit rank in the settings box was "not valid JSON (Exceeds the limit (4300 digits) ...)", and
    in a loaded file it stopped Load config with ValueError. Each is now its setting and its bounds."""
    values = dict(zip(fields.NAMES, demo_values()), learning_rate=int("9" * 500), lora_rank="1" + "0" * 5000)
    out = hp.validate_settings(gui, "en", *[values[n] for n in fields.NAMES])
    assert "Learning rate must be at most 1, got 999" in out and "LoRA rank must be at most 1024, got 1000" in out
    assert "(500 characters)" in out and "(5,001 characters)" in out and len(out) < 800, out[:1000]
    box = dict(zip(fields.NAMES, demo_values()))
    text = json.dumps(box).replace('"lora_rank": 16', '"lora_rank": 1' + "0" * 5000)
    out = fields.with_settings(partial(hp.validate_settings, gui))("zh-CN", text)
    assert "LoRA 秩最多为 1024，现在是 1000" in out and "共 5,001 个字符" in out and len(out) < 600, out[:1000]
    big = uploads / "big.yaml"
    big.write_text(f"lora_rank: 1{'0' * 5000}\nlearning_rate: {'9' * 500}\nseed: 7\n")
    out = dict(zip(fields.NAMES + ["note"], hp.load_settings(gui, str(big), "en")))
    assert out["seed"] == 7 and out["lora_rank"] == 16  # the others load; this one is named, not sent
    assert "LoRA rank must be at most 1024" in out["note"] and "Learning rate must be at most 1" in out["note"]
    assert len(out["note"]) < 800, out["note"][:1000]


def test_a_path_too_long_to_exist_is_not_found_in_the_settings_check(gui):
    """A 100,000-character model or dataset typed in the page stopped the settings check with
    OSError 'File name too long' (its stat, at the trust boundary), so the page said nothing useful."""
    values = dict(zip(fields.NAMES, demo_values()), base_model="m" * 100_000, dataset="d" * 5000)
    out = hp.validate_settings(gui, "en", *[values[n] for n in fields.NAMES])
    assert "'mmmmm" in out and "(100,000 characters)" in out and "'ddddd" in out and "(5,000 characters)" in out
    assert out.count("not found") == 2 and len(out) < 1200, out[:1500]


def test_recipe_changes_only_its_own_settings():
    out = hp.apply_recipe("quick")
    by_name = dict(zip(fields.NAMES, out))
    assert by_name["lora_rank"] == 8
    assert by_name["base_model"] is not None and not isinstance(by_name["base_model"], int)
    assert isinstance(by_name["base_model"], type(gr.skip()))


def test_memory_fit_warns_and_suggests_a_change_when_it_will_not_fit(gui):
    gpu = [dict(index=0, name="Small GPU", memory_total_mib=8192, memory_free_mib=8000)]
    fits = hp.memory_fit(FakeGui(gui, gpu), "en", [0], "Qwen/Qwen2.5-0.5B-Instruct", "4bit", 1024, 4, 16, True, True)
    big = hp.memory_fit(FakeGui(gui, gpu), "en", [0], "Qwen/Qwen2.5-7B-Instruct", "none", 8192, 16, 16, False, False)
    assert fits.startswith("✓") and "Fits" in fits
    assert big.startswith("⚠") and "NOT fit" in big and "Try:" in big


def test_memory_fit_on_cpu_and_for_unknown_models(gui):
    out = hp.memory_fit(FakeGui(gui, []), "en", ["cpu"], "builtin:danlu-tiny", "4bit", 128, 8, 16, True, True)
    assert "CPU" in out and "Fits" in out
    assert "unknown" in hp.memory_fit(FakeGui(gui, []), "en", ["cpu"], "someone/unknown-model", "4bit", 128, 8, 16, True, True)


def test_model_shape_reads_a_local_folder(gui, tmp_path):
    folder = gui.ws.models / "mine"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, '
                                          '"vocab_size": 400, "num_attention_heads": 4, "num_key_value_heads": 2}')
    shape, _ = model_shape(str(folder), gui.ws, origin="browser")
    assert shape == Shape(hidden=64, layers=2, intermediate=128, vocab=400, heads=4, kv_heads=2)
    (tmp_path / "config.json").write_text((folder / "config.json").read_text())
    assert model_shape(str(tmp_path), gui.ws, origin="shell")[0] == shape  # the command line reads any folder
    with pytest.raises(InputError, match="outside the workspace"):  # the page does not
        model_shape(str(tmp_path), gui.ws, origin="browser")


def test_show_command_is_the_real_cli_line(gui):
    line = hp.show_command(gui, "en", ["cpu"], 2, *demo_values())
    assert line.startswith("python app.py train ") and line.endswith("--nproc 2")
    cfg = load_config(line.split()[3])  # the file it names exists and loads
    assert cfg.base_model == "builtin:danlu-tiny"


def test_save_and_load_config_round_trip(gui):
    values = dict(zip(fields.NAMES, demo_values()), lora_rank=24, lora_alpha=48)
    path, message, note = hp.save_settings(gui, "en", *[values[n] for n in fields.NAMES])
    assert Path(path).is_file() and "valid" in message and note == f"✓ Saved as `{Path(path).name}`"
    loaded = hp.load_settings(gui, path, "en")
    assert dict(zip(fields.NAMES, loaded))["lora_rank"] == 24 and loaded[-1] == f"✓ Loaded `{Path(path).name}`"
    extra = Path(path).with_name("extra.yaml")
    extra.write_text(Path(path).read_text() + "lora_rnak: 8\n")
    assert "lora_rnak" in hp.load_settings(gui, str(extra), "en")[-1]  # an unknown key is named, not dropped silently
    # given what the page shows, only what the file changes is sent
    shown = dict(values, lora_rank=8)
    partly = dict(zip(fields.NAMES, hp.load_settings(gui, path, "en", *[shown[n] for n in fields.NAMES])))
    assert partly["lora_rank"] == 24 and partly["lora_alpha"] == gr.skip() and partly["base_model"] == gr.skip()


def test_a_refused_file_names_all_that_is_wrong_in_it_at_once(gui, uploads):
    """A file naming a dataset outside the allowed folders is refused whole; its NaN learning rate, its
    5,001-digit rank and its unknown key were only found once the person had fixed the path and loaded again."""
    bad = uploads / "hostile.yaml"
    bad.write_text(f"dataset: /etc/passwd\nlearning_rate: .nan\nlora_rank: 1{'0' * 5000}\nlora_rnk: 8\n")
    out = hp.load_settings(gui, str(bad), "en")
    assert all(v == gr.skip() for v in out[:-1])  # nothing loaded
    note = out[-1]
    assert "The loaded file (4)" in note and "/etc/passwd" in note and "Learning rate" in note, note
    assert "LoRA rank" in note and "lora_rnk" in note and len(note) < 2000, note[:2000]


def test_a_loaded_value_no_widget_can_show_is_named_not_sent(gui, uploads):
    """Load config with a list for a number (found by a browser probe): the value was sent to its
    widget as it was, Gradio refused the whole answer and the page kept the previous file's settings
    and note, saying nothing. Now such a value is named in the note and not loaded; the others are,
    converted to their settings' types; a bound is still the settings check's to say."""
    odd = uploads / "odd.yaml"
    odd.write_text("max_seq_length: [1, 2]\nlearning_rate: .inf\nwarmup_ratio: abc\nlora_rank: '24'\n"
                   "micro_batch_size: 3000000\n")
    out = dict(zip(fields.NAMES + ["note"], hp.load_settings(gui, str(odd), "en")))
    assert out["lora_rank"] == 24 and out["micro_batch_size"] == 3000000
    assert out["max_seq_length"] == 1024 and isinstance(out["learning_rate"], float) and out["learning_rate"] < 1
    note = out["note"]
    for words in ("Maximum length (tokens) must be a whole number, got [1, 2]", "must be a finite number, got inf",
                  "got 'abc'"):
        assert words in note, note
    assert "✓ Loaded" not in note


def test_a_partial_file_names_the_settings_it_put_back_to_their_defaults(gui, uploads):
    """A file naming two settings loads as `python app.py train` runs it: the rest at their defaults.
    A setting the page showed otherwise is named in the note (a newcomer expects it kept), in each
    language; one already at its default is not."""
    part = uploads / "part.yaml"
    part.write_text("lora_rank: 24\nnum_epochs: 2\n")
    current = dict(zip(fields.NAMES, fields.config_values({}, fields.NAMES)), learning_rate=0.5, lora_rank=8)
    out = dict(zip(fields.NAMES + ["note"], hp.load_settings(gui, str(part), "en", *current.values())))
    assert out["lora_rank"] == 24 and out["learning_rate"] == fields.config_values({}, ["learning_rate"])[0]
    note = out["note"]
    assert "✓ Loaded `part.yaml`" in note and "back at their defaults" in note and note.endswith("Learning rate"), note
    assert "Maximum length" not in note  # shown at its default already: nothing was reset
    assert "学习率" in note.texts["zh-CN"] and "Tasa de aprendizaje" in note.texts["es"], note.texts
    whole = dict(current, lora_rank=24, num_epochs=2, learning_rate=out["learning_rate"])
    again = hp.load_settings(gui, str(part), "en", *whole.values())[-1]
    assert "✓ Loaded" in again and "defaults" not in again  # nothing the page showed was reset


def test_launch_spec_from_the_gpu_picker():
    assert hp.launch_spec(["cpu"], 2).nproc == 2 and hp.launch_spec(["cpu"], 2).gpus is None
    assert hp.launch_spec([0, 1], 1).gpus == [0, 1]


# ---- train -----------------------------------------------------------------------------------
def test_gpu_picker_offers_the_cpu_when_there_is_no_gpu():
    choices, value = tt.gpu_choices([], "en")
    assert value == ["cpu"] and "CPU" in choices[0][0]
    choices, value = tt.gpu_choices([dict(index=0, name="H100", memory_total_mib=81559, memory_free_mib=80000)], "en")
    assert value == [0] and "78.1 / 79.6 GiB free" in choices[0][0]


def test_start_refuses_bad_settings_in_words_and_starts_nothing(gui):
    values = dict(zip(fields.NAMES, demo_values()), lora_rank=0, dataset="")
    job_id, message, _ = tt.start_training(gui, "en", ["cpu"], 1, *[values[n] for n in fields.NAMES])
    assert isinstance(job_id, type(gr.skip()))
    assert "LoRA rank" in message and "Dataset file" in message
    assert gui.store.list() == []


def test_start_then_watch_a_job_to_the_end(gui, monkeypatch):
    monkeypatch.setenv("DANLU_FAKE_STEPS", "20")
    monkeypatch.setenv("DANLU_FAKE_STEP_S", "0.05")
    job_id, message, _ = tt.start_training(gui, "en", ["cpu"], 1, *demo_values())
    assert gui.store.get(job_id) is not None and job_id in message
    deadline, seen, out = time.time() + 120, "", None
    while time.time() < deadline:
        out = tt.refresh_job(gui, job_id, seen, "en")
        seen = seen if out[5] == gr.skip() else out[5]  # a skip: the page keeps what it has
        if gui.store.get(job_id).state in J.TERMINAL:
            out = tt.refresh_job(gui, job_id, "", "en")
            break
        time.sleep(0.5)
    status, failure, log, loss, lr = out[:5]
    assert gui.store.get(job_id).state == J.SUCCEEDED, log
    assert status.startswith("**Succeeded**") and "20/20" in status
    assert list(loss.columns) == ["step", "loss", "series"] and len(lr) == 20
    assert loss["loss"].notna().sum() == 20 and set(loss["series"]) == {"train", "validation"}
    assert "step 20/20" in log
    unchanged = tt.refresh_job(gui, job_id, out[5], "en")
    assert all(v == gr.skip() for v in unchanged)  # nothing new: nothing sent


@pytest.mark.parametrize("name, said", [
    ("run_name", "Run name is 100,000 characters long; it may have at most 100"),
    ("target_modules", "Layers to adapt is 100,000 characters long; it may have at most 1,000"),
    ("start_adapter", "There is no job with the id 'aaaaa"),
])
def test_a_text_setting_of_100000_letters_is_named_by_the_settings_check_and_starts_nothing(gui, name, said):
    """The settings check said "All settings are valid" for each: Start then ran a job named by the first 200
    letters (run_name), handed PEFT a layer of 100,000 letters (target_modules), or only then said there is
    no such job (start_adapter). Now the check names the setting and Start starts nothing."""
    values = dict(zip(fields.NAMES, demo_values()), **{name: "a" * 100_000})
    out = hp.validate_settings(gui, "en", *[values[n] for n in fields.NAMES])
    assert f"(`{name}`): {said}" in out and "100,000" in out and len(out) < 800, out[:1000]
    job_id, message, _ = tt.start_training(gui, "en", ["cpu"], 1, *[values[n] for n in fields.NAMES])
    assert said in message and gui.store.list() == []


def test_job_table_and_reattach_pick_the_newest_training_job(gui):
    a = gui.store.create(kind="train", name="first", run_dir=str(gui.ws.runs / "a"))
    time.sleep(0.01)
    b = gui.store.create(kind="train", name="second", run_dir=str(gui.ws.runs / "b"))
    assert tt.initial_job(gui, None) == (b.id, b.id)
    assert tt.initial_job(gui, a.id) == (a.id, a.id)
    assert tt.initial_job(gui, "gone") == (b.id, b.id)
    table, picker, sig = tt.refresh_jobs(gui, "en", b.id, "")
    assert list(table.iloc[:, 0]) == [b.id, a.id] and list(table.iloc[:, 3]) == ["Queued", "Queued"]
    # the poll never sets the picker: one sent before Start answered wrote back the job it had been sent
    # (the Chinese walk: the page showed a cancelled job under "Started job ..." for the whole run)
    assert "value" not in picker and [v for _, v in picker["choices"]] == [b.id, a.id], picker
    assert all(isinstance(v, type(gr.skip())) for v in tt.refresh_jobs(gui, "en", b.id, sig))  # unchanged: nothing sent
    table_zh = tt.refresh_jobs(gui, "zh-CN", b.id, sig)[0]
    assert list(table_zh.iloc[:, 3]) == ["排队中", "排队中"] and table_zh.columns[0] == "任务"


def test_failed_job_shows_reason_and_hint_above_the_log():
    from core.messages import Msg, said
    st = dict(state="failed", id="x", reason="cuda_oom", error={}, **said(Msg("fail.cuda_oom"), Msg("fail.oom_lower")))
    update = jobview.failure_update(st, "en")
    assert update["visible"] and "out of GPU memory" in update["value"] and "What to do:" in update["value"]
    assert "Lower 'Batch size per device'." in update["value"]
    zh = jobview.failure_update(st, "zh-CN")["value"]
    assert "GPU 显存不足" in zh and "调小“每个设备的批大小”。" in zh
    cancelled = jobview.failure_update(dict(st, state="cancelled", reason="cancelled", **said(Msg("end.cancelled"))),
                                       "zh-CN")["value"]
    assert "已由你停止" in cancelled and "Cancelled" not in cancelled
    older = jobview.failure_update(dict(st, message="Written by an older Danlu.", message_msg=None), "zh-CN")["value"]
    assert "Written by an older Danlu." in older  # a record without codes shows its English as it is
    assert "— odd_new_code" in jobview.failure_update(dict(st, reason="odd_new_code"), "en")["value"]
    assert not jobview.failure_update(dict(state="running"), "en")["visible"]


@pytest.mark.parametrize("lang", ["en", "ja", "ko"])
def test_a_stopped_job_says_who_stopped_it_once_and_keeps_its_hint(lang):
    """The box said "Cancelled — stopped by you" then "Cancelled by the user." (a browser walk in Japanese)."""
    from core.messages import Msg, said
    st = dict(state="cancelled", id="x", reason="cancelled", error={}, **said(Msg("end.cancelled"), Msg("fail.oom_lower")))
    text = jobview.failure_update(st, lang)["value"]
    assert jobview.say(Msg("end.cancelled"), lang) not in text and tr("reason.cancelled", lang) in text
    assert jobview.say(Msg("fail.oom_lower"), lang) in text


def test_stop_and_resume_need_a_job(gui):
    assert "Choose a job" in tt.stop_job(gui, "en", None)
    assert "Choose a job" in tt.resume_job(gui, "en", None)[1]


def test_stop_promises_a_checkpoint_only_once_the_job_has_trained(gui, monkeypatch):
    """Stopped while it still loads, a job has no checkpoint to save: the answer must not promise one."""
    from core.rundir import RunDir, write_json
    job = gui.store.create(kind="train", name="x", run_dir=str(gui.ws.runs / "x"))
    monkeypatch.setattr(tt.launcher, "cancel", lambda ws, job_id: gui.store.get(job_id))
    RunDir(job.run_dir).path.mkdir(parents=True)
    write_json(RunDir(job.run_dir).progress, dict(phase="loading", step=0, total_steps=None))
    loading = tt.stop_job(gui, "ja", job.id)
    assert loading == f"■ 停止しています： `{job.id}`"
    write_json(RunDir(job.run_dir).progress, dict(phase="training", step=3, total_steps=40))
    assert tt.stop_job(gui, "en", job.id) == f"■ Stopping (a checkpoint is saved first): `{job.id}`"


def test_long_runs_are_thinned_for_the_plot_but_keep_the_newest_point():
    recs = [dict(step=i, loss=1.0 / i, lr=0.1) for i in range(1, 5001)]
    loss, lr = tp.plot_frames(recs)
    train = loss[loss["series"] == "train"]
    assert len(train) <= tp.MAX_PLOT_POINTS + 1 and train["step"].iloc[-1] == 5000 and train["step"].iloc[0] == 1
    assert tp.plot_frames(recs[:10])[0]["loss"].notna().sum() == 10
    assert tp.plot_frames([]) == (None, None)  # never an empty frame (see typed_frame)


def test_jobs_are_named_after_the_uploaded_file_not_its_stored_copy(gui, tmp_path):
    from core.data import import_file
    src = tmp_path / "my furnaces.jsonl"
    src.write_bytes((Path(__file__).resolve().parents[2] / "presets/templates/data/demo.jsonl").read_bytes())
    info = import_file(gui.ws, src, "my furnaces.jsonl", origin="shell")
    assert Path(info["current_path"]).stem != "my furnaces"
    assert tt.job_name(gui, info["current_path"]) == "my furnaces"
    assert tt.job_name(gui, "/elsewhere/support.jsonl") == "support"


def test_job_table_shows_the_step_a_finished_job_ended_at(gui):
    run_dir = gui.ws.runs / "done"
    run_dir.mkdir(parents=True)
    (run_dir / "progress.json").write_text('{"step": 37, "total_steps": 40}')
    job = gui.store.create(kind="train", name="done", run_dir=str(run_dir))
    gui.store.transition(job.id, J.CANCELLED)
    table, _, _ = tt.refresh_jobs(gui, "en", job.id, "")
    assert list(table.iloc[0])[3:5] == ["Cancelled", "37/40"]


def test_a_template_click_answers_everything_in_one_go(gui):
    """Settings, recipe, note, what the model and the recipe are, and no selected dataset: one event."""
    out = tpl.apply_template(gui, "support-bot", "en", *demo_values())
    assert len(out) == len(fields.NAMES) + 5
    note, model_info, recipe_info, ds_id = out[-4:]
    assert "support-bot" in note and "qwen2.5-1.5b" in model_info and recipe_info and ds_id == ""


# ---- chat: sharing a demo ----------------------------------------------------------------------
def test_share_a_demo_answers_at_once_and_refuses_an_open_address_without_login(gui):
    from core import demos
    from webui.tabs import chat_tab as ct
    assert ct.demo_starting("en", "127.0.0.1", "", "", False).startswith("Starting the demo")
    refused = ct.demo_starting("en", "0.0.0.0", "", "", False)
    assert "0.0.0.0" in refused and "Starting" not in refused
    # in the page's words (its fields), not the command line's (--host, --auth)
    assert "**Address**" in refused and "Login name and Password" in refused and "--" not in refused
    assert "**地址**" in ct.demo_starting("zh-CN", "0.0.0.0", "", "", False)
    # the slow half says the same and starts nothing
    message, table, pick = ct.start_demo(gui, "en", "builtin:danlu-tiny", None, "", "0.0.0.0", None, "", "", False)
    assert message == refused and table == gr.skip() and demos.list_demos(gui.ws) == []
    assert "share link is public" in ct.demo_starting("en", "127.0.0.1", "", "", True)  # it needs a login too


def test_load_config_describes_the_loaded_model_in_its_own_answer(gui, uploads):
    from webui.app import _load_config
    shown = demo_values()
    other = uploads / "other.yaml"
    other.write_text("base_model: qwen2.5-0.5b-instruct\nlora_rank: 16\n")
    out = _load_config(gui, str(other), "en", *shown)
    assert out[fields.NAMES.index("base_model")] == "qwen2.5-0.5b-instruct" and "qwen2.5-0.5b" in out[-1]
    same = uploads / "same.yaml"
    same.write_text(f"base_model: {dict(zip(fields.NAMES, shown))['base_model']}\n")
    assert _load_config(gui, str(same), "en", *shown)[-1] == gr.skip()  # the description shown still holds


def test_the_train_tabs_line_is_kept_in_every_language_for_a_switch(gui, monkeypatch):
    """Start, Stop and Resume compose their line in the page's language; a switch said it again only
    when the hidden box kept it in every language (webui.app.keep_said / say_again). Anything a
    direct call puts in that box is no line: the switch leaves the message as it is."""
    import json as _json
    from webui import app as A
    from core.rundir import RunDir, write_json
    job = gui.store.create(kind="train", name="x", run_dir=str(gui.ws.runs / "x"))
    monkeypatch.setattr(tt.launcher, "cancel", lambda ws, job_id: gui.store.get(job_id))
    RunDir(job.run_dir).path.mkdir(parents=True)
    write_json(RunDir(job.run_dir).progress, dict(phase="training", step=3, total_steps=40))
    message, kept = A.keep_said(lambda lang, job_id: tt.stop_job(gui, lang, job_id), 0)("en", job.id)
    assert message == f"■ Stopping (a checkpoint is saved first): `{job.id}`"
    assert A.say_again("zh-CN", kept) == f"■ 正在停止（先保存检查点）： `{job.id}`"
    assert A.say_again("es", kept).startswith("■ ") and "Stopping" not in A.say_again("es", kept)
    no_job = A.keep_said(lambda lang: tt.resume_job(gui, lang, None), 1)("ko")
    assert set(_json.loads(no_job[2])) == {"en", "zh-CN", "ja", "ko", "es"} and "Choose a job" in A.say_again("en", no_job[2])
    for hostile in ("", None, "not json", "[1, 2]", '{"en": 5}', '{"ja": "x"}', "{" * 10000, "[" * 100000):
        assert A.say_again("en", hostile) == gr.skip()
