"""Load config (.yaml .yml) and Review's marks import (.csv) named their types to Gradio, which refused
any other file with its own notice, in English on every page. Their buttons take any file now, and the
page refuses one named otherwise in its own language (core.trust.check_upload: the path is checked
first, then the name, then what the file holds), said again after a switch; nothing is loaded. Names in
capitals pass, as Gradio's check let them. The Dataset tab's upload: test_said_again.py."""
import gradio as gr
import pytest
from gradio.data_classes import FileData

from core import data as D
from core.data.marks_csv import SUFFIXES as MARKS_SUFFIXES
from core.messages import Msg
from tests.webui.test_said_again import Page
from webui import i18n
from webui.context import Gui
from webui.tabs.hyperparams_tab import LOAD_SUFFIXES


@pytest.fixture
def page(services):
    return Page(Gui(services=services))


def refused(suffixes, lang: str) -> str:
    return i18n.say(Msg("upload.bad_type", types=", ".join(suffixes)), lang)


def files(folder, text: str, *names):
    out = []
    for name in names:
        (folder / name).write_text(text)
        out.append(folder / name)
    return out


def test_load_config_refuses_a_file_not_named_as_yaml_in_the_pages_language(page, uploads, tmp_path):
    notes, settings = files(uploads, "lora_rank: 7\n", "notes.pdf", "settings.txt")
    for path in (notes, settings):
        assert page.component("hp-load").preprocess(FileData(path=str(path), orig_name=path.name)) == str(path)
        out = page.call(str(path), "ko", "{}", api_name="load_config")
        assert refused(LOAD_SUFFIXES, "ko") in out["hp-loaded"] and path.name in out["hp-loaded"]
        assert out["cfg-lora_rank"] == gr.skip()  # nothing of the file is taken
        assert refused(LOAD_SUFFIXES, "es") in page.switch_all("es")["hp-loaded"]
    outside, = files(tmp_path, "lora_rank: 7\n", "outside.txt")  # the path is checked first
    said = page.call(str(outside), "en", "{}", api_name="load_config")["hp-loaded"]
    assert "allowed_roots" in said and refused(LOAD_SUFFIXES, "en") not in said
    capitals, = files(uploads, "lora_rank: 7\n", "SETTINGS.YML")
    assert page.call(str(capitals), "en", "{}", api_name="load_config")["cfg-lora_rank"] == 7


def test_the_marks_import_refuses_a_file_not_named_as_csv_in_the_pages_language(page, uploads, tmp_path):
    from tests.data.review_data import make_rows, write_rows
    ds = D.import_file(page.gui.ws, write_rows(uploads / "d.jsonl", make_rows(12)), "d.jsonl", origin="shell")["id"]
    notes, marks = files(uploads, "row,mark\n1,drop\n", "notes.pdf", "marks.txt")
    for path in (notes, marks):
        assert page.component("rv-import").preprocess(FileData(path=str(path), orig_name=path.name)) == str(path)
        said = page.call(ds, "", "", str(path), False, "ja", api_name="review_import_marks")["rv-message"]
        assert refused(MARKS_SUFFIXES, "ja") in said and path.name in said
        assert refused(MARKS_SUFFIXES, "zh-CN") in page.switch_all("zh-CN")["rv-message"]
    assert D.get_dataset(page.gui.ws, ds)["version"] == 0  # nothing imported
    outside, = files(tmp_path, "row,mark\n1,drop\n", "outside.txt")  # the path is checked first
    said = page.call(ds, "", "", str(outside), False, "en", api_name="review_import_marks")["rv-message"]
    assert "allowed_roots" in said and refused(MARKS_SUFFIXES, "en") not in said
    capitals, = files(uploads, "row,mark\n1,drop\n", "MARKS.CSV")
    assert page.call(ds, "", "", str(capitals), False, "en", api_name="review_import_marks")["rv-message"].startswith("✓")
    assert D.get_dataset(page.gui.ws, ds)["version"] == 1


def test_the_review_desk_titles_its_refusals_as_its_own_and_names_its_boxes(page, uploads):
    """Every refusal on the Review tab was titled "Problems to fix before training" and placed in English
    (note, search): a marks file is refused by its name, a change says nothing was changed, a filter
    that cannot be used says so, each box named as the page names it."""
    from tests.data.review_data import make_rows, write_rows
    from webui.tabs import review_handlers as H
    ds = D.import_file(page.gui.ws, write_rows(uploads / "d.jsonl", make_rows(12)), "d.jsonl", origin="shell")["id"]
    wrong, = files(uploads, "name,verdict\n1,drop\n", "theirs.csv")
    said = page.call(ds, "", "", str(wrong), False, "ko", api_name="review_import_marks")["rv-message"]
    assert i18n.say(Msg("marks.title", file="theirs.csv"), "ko") in said and i18n.tr("hp.problems", "ko") not in said
    q = H.view(page.gui, ds, H.filters("", False, H.ALL, H.ALL, H.ALL, H.ALL, 0, 0, "position"), "", "es")[7]
    said = H.mark_one(page.gui, "drop", ds, q, "1", "x" * 100_000, "es")[0]
    assert said.startswith(f"⚠ **{i18n.tr('rv.not_done', 'es')} (1)**") and f"**{i18n.tr('rv.note', 'es')}**" in said
    said = H.show(page.gui, ds, "case (", True, H.ALL, H.ALL, H.ALL, H.ALL, 0, 0, "position", "", "ja")[0]
    assert i18n.tr("rv.filters_bad", "ja") in said and f"**{i18n.tr('rv.search', 'ja')}**" in said
    assert D.get_dataset(page.gui.ws, ds)["version"] == 0  # nothing imported or marked
