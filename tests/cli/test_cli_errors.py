"""Bad input on the command line: exit code 2 and a message naming the field, never a traceback."""
import os
import sys

import pytest

from tests.conftest import ENV_DEFAULTS, REPO, run_app


@pytest.mark.parametrize("content,field", [
    ("lora_rnk: 8\n", "lora_rnk"),
    ("learning_rate: fast\n", "learning_rate"),
    ("dataset: /does/not/exist.jsonl\n", "dataset"),
    ("lora_rank: 0\n", "lora_rank"),
    ("micro_batch_size: -1\n", "micro_batch_size"),
])
def test_bad_config_exits_2_and_names_the_field(home, tmp_path, content, field):
    cfg = tmp_path / "c.yaml"
    base = "" if "dataset" in content else f"dataset: {tmp_path / 'd.jsonl'}\n"
    (tmp_path / "d.jsonl").write_text('{"text": "hello"}\n')
    cfg.write_text(base + content)
    r = run_app("train", cfg, home=home)
    assert r.returncode == 2, r.stdout + r.stderr
    assert field in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_missing_config_file_and_unknown_preset(home, tmp_path):
    r = run_app("train", tmp_path / "nope.yaml", home=home)
    assert r.returncode == 2 and "file not found" in r.stderr
    r = run_app("copy-preset", "no-such-preset", tmp_path / "x.yaml", home=home)
    assert r.returncode == 2 and "no preset named" in r.stderr


def test_bad_set_override(home, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "hello"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {tmp_path / 'd.jsonl'}\n")
    r = run_app("train", cfg, "--set", "packing=perhaps", home=home)
    assert r.returncode == 2 and "packing" in r.stderr and "Traceback" not in r.stderr


def test_a_long_set_value_is_quoted_short(tmp_path, monkeypatch, capsys):
    """Found by a probe on an empty workspace: `train c.yaml --set lora_rank=[[[[...` (100,000
    characters) answered with the whole value; the unknown key of a long `--set KEY=1` too."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {tmp_path / 'd.jsonl'}\n")
    assert main(["train", str(cfg), "--set", "lora_rank=" + "[" * 100_000]) == 2
    err = capsys.readouterr().err
    assert len(err) < 400, err[:500]
    assert "lora_rank: LoRA rank must be a whole number, got '[[[[[" in err and "(100,000 characters)" in err
    assert main(["train", str(cfg), "--set", "k" * 5000 + "=1"]) == 2
    err = capsys.readouterr().err
    assert len(err) < 400 and "kkkkk" in err and "unknown setting" in err, err[:500]


def test_a_dataset_path_too_long_to_exist_is_not_found(tmp_path, monkeypatch, capsys):
    """`--set dataset=ddd...` (3,000 characters) stopped with 'unexpected OSError: File name too
    long' and the whole path: Python 3.11's exists() raises ENAMETOOLONG instead of answering no."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lora_rank: 8\n")
    long = str(tmp_path / ("d" * 3000))
    assert main(["train", str(cfg), "--set", "dataset=" + long]) == 2
    err = capsys.readouterr().err
    assert len(err) < 400 and f"dataset: file not found: {tmp_path}/ddd" in err, err[:500]
    assert f"ddd… ({len(long):,} characters)" in err, err[:500]


@pytest.mark.parametrize("item,said", [
    ("lora_rank=1" + "0" * 5000, "lora_rank: LoRA rank must be at most 1024, got 10000"),
    ("learning_rate=" + "9" * 500, "learning_rate: Learning rate must be at most 1, got 99999"),
])
def test_a_number_too_large_to_hold_is_refused_with_its_bounds(tmp_path, monkeypatch, capsys, item, said):
    """Found by a probe: these stopped with "unexpected ValueError: Exceeds the limit (4300 digits) ..."
    and "unexpected OverflowError" (exit 1, a bug's words) instead of naming the setting and its bounds."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {tmp_path / 'd.jsonl'}\n")
    (tmp_path / "d.jsonl").write_text('{"text": "hello"}\n')
    assert main(["train", str(cfg), "--set", item]) == 2
    err = capsys.readouterr().err
    assert said in err and "characters)" in err and len(err) < 400, err[:500]


LONG = "x" * 5000  # a name no file system keeps: Python 3.11's exists()/is_file() raise ENAMETOOLONG on it


@pytest.mark.parametrize("argv", [
    ["check-data", "{long}"], ["clean", "{long}", "trim", "--out", "{tmp}/o.jsonl"], ["review", "{long}", "--scan"],
    ["train", "{long}"], ["check-data", "{data}", "--model", "{long}"], ["check-data", "{data}", "--model", LONG],
    ["chat", "{long}", "--prompt", "hi"], ["chat", LONG, "--prompt", "hi"], ["chat", "builtin:danlu-tiny", "--adapter", "{long}"],
    ["clean", "{data}", "trim", "--out", "{long}"], ["copy-preset", "demo", "{long}"],
    ["review", "{data}", "--redact", "--out", "{long}"],
])
def test_a_path_too_long_for_the_file_system_is_refused_in_words(tmp_path, monkeypatch, capsys, argv):
    """Found by probes: each stopped with "unexpected OSError: [Errno 36] File name too long: '/tmp/xxx...'" and
    the whole 5,000-character path. Now: exit 2, the path quoted short, never a bug's words."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n')
    args = [a.format(long=f"{tmp_path}/{LONG}", tmp=tmp_path, data=data) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err and "xxxxx…" in err and len(err) < 600, err[:800]  # quoted or placed short


HUGE = "9" * 5000


@pytest.mark.parametrize("argv,said", [
    (["check-data", "d.jsonl", "--max-seq-length", HUGE], "argument --max-seq-length: is out of this option's bounds, got 999"),
    (["clean", "d.jsonl", "trim", "--out", "o.jsonl", "--max-seq-length", "-" + HUGE], "got -999"),
    (["eval", "JOB", "--max-samples", HUGE], "argument --max-samples: is out of this option's bounds"),
    (["chat", "m", "--temperature", "1e999"], "argument --temperature: is out of this option's bounds, got 1e999"),
    (["chat", "m", "--top-p", "nan"], "argument --top-p: must be a number, got 'nan'"),
    (["train", "c.yaml", "--nproc", "1.5"], "argument --nproc: must be a whole number, got '1.5'"),
    (["jobs", "cancel", "JOB", "--wait", HUGE], "argument --wait: is out of this option's bounds"),
])
def test_a_number_option_is_refused_in_words_quoted_short(tmp_path, monkeypatch, capsys, argv, said):
    """`check-data F --max-seq-length 999...` (5,000 digits): argparse said "invalid int value: '999...'" with
    every digit (and 'invalid float value' for 1e999's neighbours), in its own words; exit code 2 stays."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and said in err and "invalid" not in err, err[-600:]
    assert len(err.splitlines()[-1]) < 400 and (HUGE not in argv or "(5,00" in err), err[-600:]


@pytest.mark.parametrize("value", ["-5", "0", "15", "1048577"])
def test_check_data_bounds_its_maximum_length_as_training_does(tmp_path, monkeypatch, capsys, value):
    """`check-data F --model M --max-seq-length -5` measured every row against -5 tokens."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n')
    assert main(["check-data", str(data), "--max-seq-length", value]) == 2
    err = capsys.readouterr().err
    assert "--max-seq-length" in err and "from 16 to 1,048,576" in err and f"got {value}" in err, err[-600:]


@pytest.mark.parametrize("argv,env,said", [
    (["gui", "--port", "99999"], None, "--port: must be between 1 and 65535, got 99999"),
    (["gui", "--port", "0"], None, "--port: must be between 1 and 65535, got 0"),
    (["gui"], "99999", "DANLU_PORT: must be between 1 and 65535, got 99999"),
    (["gui"], "7860.5", "DANLU_PORT: must be between 1 and 65535, got 7860.5"),
    (["gui"], "abc", "The environment variable DANLU_PORT is 'abc'"),  # core.knobs' words (exit 1, as a rank's)
])
def test_a_port_no_socket_can_bind_is_refused_naming_where_it_came_from(tmp_path, monkeypatch, capsys, argv, env, said):
    """`gui --port 99999` reached bind() and ended as 'unexpected OverflowError'; a bad $DANLU_PORT was reported
    as argument --port, which the person never typed."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    if env is None:
        monkeypatch.delenv("DANLU_PORT", raising=False)
    else:
        monkeypatch.setenv("DANLU_PORT", env)
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == (1 if env == "abc" else 2) and said in err and "unexpected" not in err, err[-600:]


def test_a_device_or_pipe_is_refused_not_read_forever(home, tmp_path):
    """Found by a CLI probe: `train c.yaml --set dataset=/dev/zero` (or a FIFO) hashed the 'file' forever,
    `train /dev/zero`, `review --apply-marks /dev/zero` and `demo --auth-file /dev/zero` read it forever,
    `train FOLDER` and `review --apply-marks missing.csv` stopped with 'unexpected ...Error', and check-data
    called a FIFO a folder. A config through a pipe (`train <(cat c.yaml)`) is still read."""
    import subprocess
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "hello"}\n')
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {data}\n")
    for args, said in [(("train", cfg, "--set", "dataset=/dev/zero"), "dataset: /dev/zero is not a regular file"),
                       (("train", cfg, "--set", f"dataset={fifo}"), "is not a regular file"),
                       (("train", "/dev/zero"), "/dev/zero: is larger than 16 MB: not a config file"),
                       (("train", tmp_path), "is a folder, not a file"),
                       (("train", ""), "no config file given"),  # was ". is a folder"
                       (("review", data, "--apply-marks", "/dev/zero", "--out", tmp_path / "o.jsonl"), "is not a regular file"),
                       (("review", data, "--apply-marks", tmp_path / "no.csv", "--out", tmp_path / "o.jsonl"), "file not found"),
                       (("check-data", fifo), f"{fifo}: is not a regular file"),
                       (("demo", "danlu-tiny", "--auth-file", "/dev/zero"), "/dev/zero is not a regular file")]:
        try:
            r = run_app(*args, home=home, timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{args} did not answer within 30 s")
        assert r.returncode == 2 and said in r.stderr and "unexpected" not in r.stderr, (args, r.stderr)
    piped = subprocess.run(f"{sys.executable} {REPO / 'app.py'} train <(cat {cfg}) --set lora_rank=0", shell=True,
                           executable="/bin/bash", capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, DANLU_HOME=str(home), **ENV_DEFAULTS))
    assert piped.returncode == 2 and "lora_rank: LoRA rank must be at least 1" in piped.stderr, piped.stderr


@pytest.mark.parametrize("argv", [
    ["copy-preset", "demo", "{blocker}/x.yaml"], ["clean", "{data}", "trim", "--out", "{blocker}/o.jsonl"],
    ["review", "{data}", "--redact", "--out", "{blocker}/o.jsonl"], ["copy-preset", "demo", "/proc/self/x.yaml"],
])
def test_an_output_the_system_refuses_is_said_in_words(tmp_path, monkeypatch, capsys, argv):
    """Found by a CLI probe: an --out or a preset's copy where the system refuses to write (a file where a folder
    should be, /sys, /proc) stopped with 'unexpected FileExistsError' / 'PermissionError' / 'FileNotFoundError'
    naming Danlu's temporary file. Now: exit 2, the system's reason, the folder it could not write in."""
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n')
    (tmp_path / "blocker").write_text("a file, not a folder\n")
    assert main([a.format(blocker=tmp_path / "blocker", data=data) for a in argv]) == 2
    err = capsys.readouterr().err
    assert "unexpected" not in err and ".tmp" not in err and "check the path" in err, err


def test_a_setting_written_twice_is_refused_naming_its_line(home, tmp_path):
    """Found by a CLI probe: a config with `lora_rank: 16` and, further down, `lora_rank: 8` trained with 8 and
    said nothing (YAML forbids a key twice; PyYAML keeps the last). A key merged in from an anchor may still be
    overridden."""
    from core.config import load_yaml_text
    (tmp_path / "d.jsonl").write_text('{"text": "hello"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {tmp_path / 'd.jsonl'}\nlora_rank: 16\nseed: 1\nlora_rank: 8\n")
    r = run_app("train", cfg, home=home)
    assert r.returncode == 2 and 'c.yaml:4: the key "lora_rank" is written twice (the first time on line 2)' in r.stderr, r.stderr
    # what to do: one line per setting, not YAML's "check indentation" (found by a later probe)
    assert 'keep one line per setting: leave the "lora_rank" line with the value you mean and delete the other' \
        in r.stderr and "indentation" not in r.stderr, r.stderr
    cfg.write_text(f"dataset: {tmp_path / 'd.jsonl'}\ncolumn_map: {{prompt: q, prompt: question}}\n")
    r = run_app("train", cfg, home=home)  # both on one line: which value, not which line
    assert 'c.yaml:2: the key "prompt" is written twice on this line' in r.stderr and 'write "prompt" once' in r.stderr
    assert load_yaml_text("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n")["c"] == {"x": 3, "y": 2}


def test_a_set_value_with_a_key_twice_says_so(tmp_path, monkeypatch, capsys):
    """Found by a CLI probe: `--set 'column_map={a: 1, a: 2}'` (a mapping setting, its YAML holding a key twice)
    said column_map "must be a mapping" (it is one); now it names the key and says to write it once, as a config
    file's key twice is refused. A text setting keeps such a value as its text."""
    from cli.main import main
    from core.config import parse_override
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    (tmp_path / "d.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: {tmp_path / 'd.jsonl'}\n")
    assert main(["train", str(cfg), "--set", "column_map={prompt: q, prompt: question}"]) == 2
    err = capsys.readouterr().err
    assert 'column_map: the key "prompt" appears twice in this value' in err and "mapping" not in err, err
    assert 'write "prompt" once' in err, err
    assert parse_override("run_name={a: 1, a: 2}") == ("run_name", "{a: 1, a: 2}")


def test_a_demo_in_a_language_the_page_does_not_speak_is_refused_before_loading(tmp_path, monkeypatch, capsys):
    from cli.main import main
    monkeypatch.setenv("DANLU_HOME", str(tmp_path / "home"))
    rc = main(["demo", "builtin:danlu-tiny", "--lang", "fr"])
    err = capsys.readouterr().err
    assert rc == 2 and "--lang: is not a language the page speaks: fr; use one of en, zh-CN, ja, ko, es" in err, err[-600:]
    assert not (tmp_path / "home" / "models" / "danlu-tiny").exists()  # refused before loading anything


def test_ctrl_c_on_an_evaluation_or_export_does_not_promise_a_checkpoint(services, monkeypatch):
    """Ctrl-C on `python app.py eval` or `merge` said 'stopping job ... (it saves a checkpoint first)': only
    training saves one (found interrupting both from the shell)."""
    import io

    from cli import train_cmd
    from core import jobs as J
    for kind in ("eval", "merge", "train"):
        job = services.store.create(kind=kind, name="x", run_dir=str(services.workspace.runs / kind))
        services.store.transition(job.id, J.STARTING)
        pressed = []

        def ctrl_c(path, pos, strip, out):
            if not pressed:
                pressed.append(1)
                raise KeyboardInterrupt
            return pos
        monkeypatch.setattr(train_cmd, "_print_new", ctrl_c)
        monkeypatch.setattr(train_cmd.launcher, "cancel", lambda ws, i: services.store.transition(i, J.CANCELLED))
        out = io.StringIO()
        assert train_cmd.follow(services, job.id, cancel_on_interrupt=True, out=out) == 1
        assert f"stopping job {job.id}" in out.getvalue()
        assert ("checkpoint" in out.getvalue()) == (kind == "train"), (kind, out.getvalue())


@pytest.mark.parametrize("argv,said", [(["--prompt", " "], "is empty"),
                                       (["--prompt", "hi", "--temperature", "-1", "--top-p", "5"], "top_p")])
def test_chat_refuses_what_was_typed_before_it_loads_the_model(services, monkeypatch, capsys, argv, said):
    """An empty --prompt or a temperature out of bounds was said only after the model had loaded (minutes for
    a big one; found probing `python app.py chat`)."""
    from cli.main import main
    from core import chat
    monkeypatch.setattr(chat.ChatEngine, "load", lambda *a, **k: pytest.fail("the model loaded first"))
    assert main(["--home", str(services.workspace.root), "chat", "builtin:danlu-tiny", *argv]) == 2
    assert said in capsys.readouterr().err


def test_copy_preset_onto_a_folder_says_the_folder_is_no_file(services, tmp_path, capsys):
    """`copy-preset demo FOLDER --force` said "cannot write in the folder <its parent>: Is a directory", as if
    the parent were the problem (found probing the CLI)."""
    from cli.main import main
    (tmp_path / "mine").mkdir()
    for extra in ([], ["--force"]):
        assert main(["--home", str(services.workspace.root), "copy-preset", "demo", str(tmp_path / "mine"), *extra]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'mine'} is a folder" in err and "name a file to write" in err, err
    assert (tmp_path / "mine").is_dir()


def test_resuming_or_retrying_an_evaluation_says_it_is_no_training_job_in_english(services):
    """`jobs resume EVAL_JOB` said "job ... is a eval job; only training jobs resume" (found probing the CLI)."""
    from core import launcher
    from core.errors import JobError
    job = services.store.create(kind="eval", name="x", run_dir=str(services.workspace.runs / "x"))
    for act in (lambda: launcher.resume(services.workspace, job.id),
                lambda: launcher.retry(services.workspace, job.id, {}, origin="shell")):
        with pytest.raises(JobError) as e:
            act()
        assert "is not a training job (its kind: eval)" in str(e.value) and "a eval" not in str(e.value)
