"""Every sentence core (and the CLI) says to a person is a message code with parameters
(core/messages.py): the English catalog has each code once, the words render from it, and no
sentence is built as a bare string where a person would read it."""
import ast
import json
import pickle
from pathlib import Path

import pytest

from core.catalog_en import EN
from core.errors import DanluError, InputError, NotFound, Problem
from core.messages import Msg, label, placeholders, recorded, render, said, verbatim

REPO = Path(__file__).resolve().parents[2]
# calls whose arguments are words for a person (the first argument of the Problem/Issue/report
# family is a place or a kind, not words)
SAYING = {"Problem", "DanluError", "InputError", "ConfigError", "NotFound", "JobError", "ChatError", "ChatTemplateError",
          "Diverged", "DiskFull", "Issue", "report", "said", "keep", "_refuse"}
FIRST_IS_NOT_WORDS = {"Problem", "Issue", "report", "keep"}
NO_WORDS_IN_ARGS = {"ConfigError"}  # its second argument names a file, "--set" or a preset
WORD_KEYWORDS = {"message", "hint", "title", "summary"}
# the only places that may show outside words as they are (a library's error text, an older record)
VERBATIM_OK = {"core/messages.py", "core/data/readers.py", "core/data/formats.py", "core/data/insight.py",
               "core/diagnose.py", "core/demos.py", "core/recipes/merge.py", "core/ollama.py"}


def _is_text(node) -> bool:
    """A sentence written in place: a non-empty string literal, an f-string, or text glued with +."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value.strip() != ""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_text(node.left) or _is_text(node.right)
    if isinstance(node, ast.IfExp):
        return _is_text(node.body) or _is_text(node.orelse)
    return False


def _name(func) -> str:
    return getattr(func, "attr", getattr(func, "id", ""))


def bare_sentences(path: Path) -> list[str]:
    """Where a file builds words for a person without a code."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = _name(node.func)
            if name in SAYING and name not in NO_WORDS_IN_ARGS:
                args = node.args[1:] if name in FIRST_IS_NOT_WORDS else node.args
                out += [f"{path.relative_to(REPO)}:{a.lineno} {name}(...)" for a in args if _is_text(a)]
            out += [f"{path.relative_to(REPO)}:{k.value.lineno} {name}({k.arg}=...)" for k in node.keywords
                    if k.arg in WORD_KEYWORDS and _is_text(k.value) and name not in ("filterwarnings", "Blocks")]
            if name == "verbatim" or (name == "Msg" and node.args and getattr(node.args[0], "value", "") == "verbatim"):
                if str(path.relative_to(REPO)) not in VERBATIM_OK:
                    out.append(f"{path.relative_to(REPO)}:{node.lineno} verbatim() outside {sorted(VERBATIM_OK)}")
        elif isinstance(node, ast.Dict):
            out += [f"{path.relative_to(REPO)}:{v.lineno} {{{k.value!r}: ...}}" for k, v in zip(node.keys, node.values)
                    if isinstance(k, ast.Constant) and k.value in WORD_KEYWORDS and _is_text(v)]
    return out


def test_the_scan_finds_a_bare_sentence(tmp_path):
    bad = REPO / "core" / "_scan_probe.py"
    try:
        bad.write_text('raise InputError(problems=[Problem("x", f"{y} is wrong", "fix it")])\n'
                       'store.transition(j, "FAILED", message="It broke.")\n'
                       'info = {"hint": "press Resume"}\n'
                       'ok = Problem("where", Msg("any.nul"))\n')
        found = bare_sentences(bad)
        assert len(found) == 4, found
    finally:
        bad.unlink()


def test_core_the_cli_and_the_page_build_no_sentence_without_a_code():
    found = [hit for d in ("core", "cli", "webui") for p in sorted((REPO / d).rglob("*.py")) for hit in bare_sentences(p)]
    assert not found, "\n".join(found)


def test_problem_and_errors_refuse_plain_text():
    with pytest.raises(TypeError):
        Problem("lora_rank", "must be at least 1")
    with pytest.raises(TypeError):
        Problem("lora_rank", Msg("config.unknown"), "a plain hint")
    with pytest.raises(TypeError):
        NotFound("no job 7")
    with pytest.raises(TypeError):
        said(Msg("end.finished"), "plain")
    with pytest.raises(KeyError):
        Msg("no.such.code")


def test_every_catalog_code_is_used_somewhere():
    """A code no module says is dead weight for every translator."""
    source = "\n".join(p.read_text(encoding="utf-8") for d in ("core", "cli", "webui") for p in (REPO / d).rglob("*.py")
                       if p.name != "catalog_en.py")
    derived = ("kind.", "jobstate.", "enc.", "presets.kind.", "type.", "review.mark.", "pii.kind.", "cluster.pending.", "gen.")  # built as prefix + a value
    unused = [c for c in EN if f'"{c}"' not in source and f"'{c}'" not in source and not c.startswith(derived)
              and not (c.endswith(".hint") and f'"{c[:-5]}"' in source)]
    assert not unused, unused


def test_english_is_the_clis_words():
    assert str(Msg("config.min", label=label("lora_rank"), n="1", value="0")) == "LoRA rank must be at least 1, got 0"
    assert str(Msg("clean.dedupe", n=1, total=4)) == "removed 1 duplicate row (of 4)"
    assert str(Msg("clean.dedupe", n=1200, total=4000)) == "removed 1,200 duplicate rows (of 4,000)"
    steps = [Msg("memory.smaller_batch"), Msg("memory.4bit")]
    assert str(Msg("memory.no_fit", need="30.0", free="8.0", steps=steps)) == (
        "Will probably NOT fit: about 30.0 GiB needed but only 8.0 GiB free. Try: lower the batch size per device or the "
        "maximum length, or turn on gradient checkpointing; use 4bit quantization or a smaller model.")
    e = InputError(problems=[Problem("a", Msg("any.nul"), Msg("any.type_name_again")), Problem("", Msg("config.no_dataset"))])
    assert str(e) == ("The input has problems (2 problems):\n  - a: contains a NUL character — type the name again\n"
                      "  - no dataset chosen")


def test_a_message_survives_json_and_pickle():
    m = Msg("error.problems", title=Msg("error.source", source="x.yaml"), n=1,
            problems=[Problem("lora_rank", Msg("config.min", label=label("lora_rank"), n="1", value="0")).as_msg()])
    assert Msg.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    e = pickle.loads(pickle.dumps(NotFound(Msg("job.none", id="'7'"), Msg("job.none.hint"))))
    assert str(e) == "no job '7' — see `python app.py jobs list`" and isinstance(e, DanluError)


def test_records_keep_english_and_code_and_older_records_still_read():
    rec = said(Msg("end.cancelled"), Msg("end.press_resume.hint"))
    assert rec["message"] == "Cancelled by the user." and rec["message_msg"]["code"] == "end.cancelled"
    assert recorded(rec, "hint") == Msg("end.press_resume.hint")
    assert recorded({"message": "Written by an older Danlu."}) == verbatim("Written by an older Danlu.")
    assert recorded({}) is None


def test_rendering_in_another_language_and_its_fallbacks():
    words = {"config.min": "{label}至少为 {n}，现在是 {value}", "field.lora_rank": "LoRA 秩",
             "memory.no_fit": "放不下：{steps|；}", "memory.4bit": "用 4bit", "memory.smaller_batch": "调小批"}.get
    assert render(Msg("config.min", label=label("lora_rank"), n="1", value="0"), words) == "LoRA 秩至少为 1，现在是 0"
    assert render(Msg("memory.no_fit", need="1", free="2", steps=[Msg("memory.smaller_batch"), Msg("memory.4bit")]),
                  words) == "放不下：调小批；用 4bit"
    broken = {"config.no_dataset": "{oops}"}.get  # a translation naming a missing parameter: English instead
    assert render(Msg("config.no_dataset"), broken) == "no dataset chosen"


def test_placeholders_of_templates():
    assert placeholders("{n:,} {n|row|rows} in {steps|; } ({label})") == {"n", "steps", "label"}


def test_a_setting_named_in_a_record_reads_in_a_process_without_core_config():
    """core.config registers its labels with core.messages (it imports messages, so not the other way
    round); a process that reads a record naming a setting before importing config still words it."""
    import subprocess
    import sys
    code = ("import sys; from core.messages import Msg; "
            "m = Msg.of({'code': 'config.type', 'params': {'label': {'code': 'field.lora_rank', 'params': {}}, "
            "'type': {'code': 'type.int', 'params': {}}, 'value': \"'x'\"}}); print(m)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "LoRA rank must be a whole number, got 'x'"


# ---- a value a person gave is quoted short (core.messages.QUOTE_LIMIT) ------------------------------
def test_a_long_value_is_quoted_as_its_head_and_its_length():
    """Found by a probe: `--set lora_rank=[[[[...` (100,000 characters) was echoed whole."""
    m = Msg("config.type", label=label("lora_rank"), type=Msg("type.int"), value=repr("[" * 100_000))
    text = str(m)
    assert len(text) < 250, text[:300]
    assert text.startswith("LoRA rank must be a whole number, got '[[[[[") and "…' (100,000 characters)" in text
    assert len(json.dumps(m.to_dict())) < 500  # a record keeps the short form too
    assert Msg.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_a_value_up_to_the_limit_is_shown_whole():
    from core.messages import QUOTE_LIMIT
    whole = "d" * QUOTE_LIMIT
    assert str(Msg("any.file_not_found_at", path=whole)) == f"file not found: {whole}"
    assert "characters" in str(Msg("any.file_not_found_at", path=whole + "d"))


def test_line_breaks_and_control_characters_in_a_value_are_escaped():
    """A typed path or key with a newline or an escape sequence would break the message's lines (or
    recolour a terminal); quoted with repr() they never did, as they are they did."""
    text = str(Msg("any.file_not_found_at", path="a\nb\r\x1b[31mred\u202egnp.x"))
    assert text == "file not found: a\\nb\\r\\x1b[31mred\\u202egnp.x"


def test_library_error_text_and_outside_words_stay_whole():
    long_error = "Traceback (most recent call last):\n" + "  File x, line 1\n" * 50
    assert long_error in str(Msg("any.cannot_read", error=long_error))
    assert str(verbatim(long_error)) == long_error


def test_a_long_place_is_cut_too():
    """An unknown setting's key is the place of its problem: a 3,000-character key was shown whole."""
    text = str(InputError(problems=[Problem("k" * 3000 + "\nx", Msg("config.unknown"))]))
    assert len(text) < 300 and "kkkk" in text and "unknown setting" in text and "\nx" not in text


def test_numbers_group_thousands_as_a_language_writes_them():
    """The ',' spec ("{n:,}") is Python's 12,345 unless a language groups otherwise: Spanish (the page's,
    webui/i18n.py) writes 1234, 12 345 and 1 234 567 with a no-break space, a float's fraction as it was."""
    from core.messages import PYTHON, Numbers
    es = Numbers("\u00a0", 5)
    cases = [(999, "999", "999"), (1234, "1,234", "1234"), (12345, "12,345", "12\u00a0345"),
             (1234567, "1,234,567", "1\u00a0234\u00a0567"), (-12345, "-12,345", "-12\u00a0345")]
    for n, english, spanish in cases:
        assert (PYTHON.format("{n:,}", n=n), es.format("{n:,}", n=n)) == (english, spanish) == (f"{n:,}", spanish)
    assert es.format("{x:,.2f} {y:,.1f}", x=12345.678, y=1234.5) == "12\u00a0345.68 1234.5"
    assert es.format("{s:.1%} {n} {n:,}", s=0.125, n=12345) == "12.5% 12345 12\u00a0345"  # only the ',' spec groups
    m = Msg("clean.dedupe", n=12345, total=1234567)
    assert str(m) == "removed 12,345 duplicate rows (of 1,234,567)"  # English (the CLI, records) as it was
    assert render(m, EN.get, es) == "removed 12\u00a0345 duplicate rows (of 1\u00a0234\u00a0567)"
    nested = render(Msg("config.min", label=label("lora_rank"), n=1, value="x" * 12345), EN.get, es)
    assert nested.endswith("x… (12\u00a0345 characters)"), nested  # a message inside a message too


@pytest.mark.parametrize("n, said", [(0, "0 bytes"), (1, "1 byte"), (1023, "1,023 bytes"), (4 << 10, "4 KB"),
                                     (1500, "1.46 KB"), (8 << 20, "8 MB"), ((8 << 20) + 40_000, "8.04 MB"),
                                     (200 << 20, "200 MB"), (1024 * 1024 - 10, "1 MB"), (3 << 29, "1.5 GB")])
def test_a_size_is_said_in_the_unit_that_keeps_its_number_readable(n, said):
    """Every size cap was said in MB (or GB) with one decimal: a cap of a few KB read "0.0 MB"."""
    from core.messages import size_msg
    assert str(size_msg(n)) == said


def test_a_size_over_its_cap_is_never_said_as_the_cap_itself():
    from core.messages import sizes_over
    assert {k: str(v) for k, v in sizes_over(6000, 4096).items()} == {"size": "5.86 KB", "limit": "4 KB"}
    assert {k: str(v) for k, v in sizes_over((8 << 20) + 12, 8 << 20).items()} == \
           {"size": "8,388,620 bytes", "limit": "8,388,608 bytes"}
