"""Files Danlu writes get the mode any program's new file gets (0666 less the umask), and a file it
replaces keeps its own. They were owner-only (0600, tempfile.mkstemp's mode) wherever a write went
through a temporary name: a config from copy-preset, a cleaned file, a run's config.yaml and results,
an export's danlu_export.json; and --force turned an existing file owner-only."""
import contextlib
import os
import stat

from core.rundir import claim_json
from core.workspace import atomic_write_text, umask
from tests.conftest import run_app


@contextlib.contextmanager
def mask(m: int):
    old = os.umask(m)
    try:
        yield
    finally:
        os.umask(old)


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_a_new_file_follows_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path):
    with mask(0o022):
        assert umask() == 0o022
        atomic_write_text(tmp_path / "new.yaml", "a: 1\n")
        assert claim_json(tmp_path / "claimed.json", {"a": 1})
        assert mode(tmp_path / "new.yaml") == mode(tmp_path / "claimed.json") == 0o644
        kept = tmp_path / "kept.yaml"
        kept.write_text("a: 1\n")
        kept.chmod(0o640)
        atomic_write_text(kept, "a: 2\n")
        assert mode(kept) == 0o640 and kept.read_text() == "a: 2\n"
    with mask(0o077):
        atomic_write_text(tmp_path / "private.yaml", "a: 1\n")
        assert mode(tmp_path / "private.yaml") == 0o600


def test_what_the_command_line_writes_is_readable_by_others_as_the_umask_says(home, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": " hello "}\n{"text": "world"}\n')
    cleaned = tmp_path / "clean.jsonl"
    cleaned.write_text("old\n")
    cleaned.chmod(0o640)
    with mask(0o022):
        r = run_app("copy-preset", "demo", tmp_path / "my.yaml", home=home)
        assert r.returncode == 0, r.stderr
        r2 = run_app("clean", data, "trim", "--out", cleaned, "--force", home=home)
        assert r2.returncode == 0, r2.stderr
    assert mode(tmp_path / "my.yaml") == 0o644
    assert mode(cleaned) == 0o640 and "hello" in cleaned.read_text()


def test_a_split_with_force_keeps_the_modes_of_the_files_it_replaces(home, tmp_path):
    """`clean ... split --force` wrote both outputs through its own temporary names, opened plainly: the
    replaced files took the umask's mode, the case the mode fix was made for (found re-reading the change)."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(f'{{"text": "row {i}"}}\n' for i in range(20)))
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    for p, m in ((train, 0o640), (val, 0o600)):
        p.write_text("old\n")
        p.chmod(m)
    with mask(0o022):
        r = run_app("clean", data, "split", "--out", train, "--val-out", val, "--force", home=home)
    assert r.returncode == 0, r.stderr
    assert (mode(train), mode(val)) == (0o640, 0o600) and "row" in train.read_text() and "row" in val.read_text()
    assert not list(tmp_path.glob(".*.tmp"))
