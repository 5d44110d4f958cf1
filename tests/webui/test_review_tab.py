"""The Review tab's handlers without a browser: what they answer in each language, and that every
change answers the `dataset` setting with the reviewed version (core's training file)."""
import json

import pytest

from core import data as D
from tests.data.review_data import make_rows, write_rows
from webui.context import Gui
from webui.i18n import tr
from webui.tabs import review_handlers as H

FILTERS = ["", False, H.ALL, H.ALL, H.ALL, H.ALL, 0, 0, "position"]


@pytest.fixture
def desk(services, tmp_path):
    gui = Gui(services=services)
    ds = D.import_file(gui.ws, write_rows(tmp_path / "d.jsonl", make_rows(120)), "d.jsonl", origin="shell")["id"]
    return gui, ds


def test_the_desk_opens_in_chinese_with_chinese_choices(desk):
    gui, ds = desk
    out = H.open_tab(gui, ds, *FILTERS, "", "zh-CN")
    problems, langs, _dups, sort, marks, bulk, kinds = out[:7]
    counts, position, chat = out[7:10]
    assert ("文本为空 (2)", "empty_text") in problems["choices"] and ("中文 (12)", "zh") in langs["choices"]
    assert sort["choices"][0] == ("按位置", "position") and ("未审阅", "unreviewed") in marks["choices"]
    assert ("删除", "drop") in bulk["choices"] and ("电子邮箱", "email") in kinds["choices"]
    assert "120 行中有 **120** 行符合" in counts and position.startswith("第 **1** 行") and "用户" in chat


def test_a_mark_answers_the_training_file_and_moves_on(desk):
    gui, ds = desk
    view = H.view(gui, ds, H.filters(*FILTERS), "", "en")
    query, row = view[7], view[6]
    out = H.mark_one(gui, "drop", ds, query, row, "off topic", "en")
    assert out[0] == "✓ Marked row 1: Drop" and out[7] == "2"          # the next row is shown
    assert out[9] == D.get_dataset(gui.ws, ds)["training_path"] != D.get_dataset(gui.ws, ds)["current_path"]
    assert "Training uses 119 rows" in out[1]
    out = H.undo(gui, ds, query, "2", "en")
    assert out[9] == D.get_dataset(gui.ws, ds)["current_path"]        # nothing marked: the data itself


def test_a_bad_regex_is_said_in_words_not_a_traceback(desk):
    gui, ds = desk
    out = H.show(gui, ds, "case (", True, *FILTERS[2:], "", "en")
    assert "not a valid regular expression" in out[0]


def test_a_language_switch_reads_no_dataset_before_the_desk_was_shown(desk, monkeypatch):
    gui, ds = desk
    from core.data import review_index
    monkeypatch.setattr(review_index, "build_index", lambda *a, **k: pytest.fail("read the dataset"))
    out = H.relabel(gui, ds, *FILTERS, "", "", "zh-CN")
    assert out[3]["choices"][0] == ("按位置", "position") and out[7] == {"__type__": "update"}


def test_a_sharegpt_pair_reads_with_both_answers_and_search_finds_the_rejected_one(services, tmp_path):
    import json
    from core.data import import_file
    from core.data.review import Filters, open_desk, select
    from core.data.review_actions import row_view
    from webui.tabs.review_render import chat_html
    rows = [{"conversations": [{"from": "human", "value": f"How do I light furnace {i}?"}],
             "chosen": {"from": "gpt", "value": f"Open the vent of furnace {i}, then light it."},
             "rejected": {"from": "gpt", "value": "Use petrol." if i == 7 else "No idea."}} for i in range(12)]
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = import_file(services.workspace, src, "pairs.jsonl", origin="shell")["id"]
    desk = open_desk(services.workspace, ds)
    found = select(desk, Filters(search="petrol"))
    assert [int(desk.index.rows[i]) for i in found] == [8]
    page = chat_html(row_view(desk, 8), "petrol", False, "en")
    assert "rv-pair" in page and "Open the vent of furnace 7" in page and "<mark" in page and "petrol" in page
    assert "{" not in page.split("rv-pair", 1)[1]  # the answers read as text, not as JSON


@pytest.mark.parametrize("row", ["1; rm -rf /", "-1", "0", "99999999999999999999", "../../etc", "1.5"])
def test_a_row_no_page_would_send_is_no_row_not_a_crash(desk, row):
    """The row box is hidden and set by the page; a direct HTTP call can send anything in it."""
    gui, ds = desk
    q = H.view(gui, ds, H.filters(*FILTERS), "", "en")[7]
    for out in (H.mark_one(gui, "drop", ds, q, row, "", "en"), H.save_edit(gui, ds, q, row, "messages[0].content", "x", "en")):
        assert out[0] == "No row is shown, so nothing was changed: show a row first (Next, or a filter)."
    assert H.mark_one(gui, "drop", "", q, "1", "", "ja")[0] == "まず「データセット」タブでデータセットを選ぶかアップロードしてください。"
    assert H.turn_text(gui, ds, row, "messages[0].content") == ""
    for out in (H.show_row(gui, ds, q, row, "en"), H.step(gui, 1, ds, q, row, "en")):
        assert out[6] in ("1", "2")  # the first matching row (or the next one), as with no row at all
    assert D.get_dataset(gui.ws, ds)["version"] == 0  # nothing was marked or edited


def test_a_hostile_query_box_reads_as_no_filter():
    """The hidden query box can hold anything a direct call sends: no filter, never a crash."""
    for text in ("[" * 100_000, "{not json", '{"bogus": 1}', "[1]"):
        assert H.query(text) == H.Filters()


@pytest.mark.parametrize("a", ["abc", "1.5", "1" + "0" * 5000, "nan"])
def test_a_version_no_page_would_send_is_said_in_words(desk, a):
    """The review_diff API takes any text as a version: "abc" reached error_text as a bare ValueError,
    which has no message, and the handler crashed with AttributeError instead of answering."""
    gui, ds = desk
    shown, compared = H.compare(gui, ds, a, "0", "en")
    assert shown == "⚠ The input has problems (1 problem):\n  - version: there are versions 0 to 0 — choose one of them", shown
    assert json.loads(compared) == {"ds": ds, "a": a, "b": "0"}  # nothing compared: a language switch says it again
    shown = H.compare(gui, ds, "0", a, "zh-CN")[0]
    assert shown.startswith("⚠ ") and "version" in shown and "0" in shown, shown


def test_the_filters_say_all_in_the_pages_language_without_a_dataset(services):
    """With no dataset chosen (or before the desk was shown) the problem, language and duplicate filters
    kept the page's first words: "all" in English on a Korean page. Their one choice follows the language."""
    gui = Gui(services=services)
    for out in (H.open_tab(gui, "", *FILTERS, "", "ko"), H.relabel(gui, "", *FILTERS, "", "", "ko"),
                H.relabel(gui, "", *FILTERS, "", '{"search": ""}', "ko")):
        for update in out[:3]:
            assert update["choices"] == [(tr("rv.all", "ko"), H.ALL)] and update["value"] == H.ALL, out[:3]


def test_the_desks_counts_and_filters_write_numbers_in_the_pages_language(services, monkeypatch):
    """'1,234 rows' on the Spanish page read as one and a bit in Spain: the counts line and the filters'
    counts group as Spanish does (1234, 12 345, no-break space); English keeps 12,345."""
    from webui.tabs.review_render import counts_markdown
    c = dict(matched=1234, total=12345, share=0.5, reviewed=1234567, keep=1, drop=12345, fix=0, unreadable=0)
    es = counts_markdown(c, {}, "es")
    assert es.startswith("**1234** de 12\u00a0345 filas") and "1\u00a0234\u00a0567" in es and "12,345" not in es, es
    assert counts_markdown(c, {}, "en").startswith("**1,234** of 12,345 rows match")
    monkeypatch.setattr(H, "open_desk", lambda ws, ds: None)
    monkeypatch.setattr(H, "choices", lambda desk: dict(problems={"empty_text": 12345}, langs={"es": 1234},
                                                         dup_rows=1234567, dup_groups=1))
    problems, langs, dups = H.filter_choices(Gui(services=services), "d", "es")
    assert problems["choices"][-1][0].endswith(" (12\u00a0345)") and langs["choices"][-1][0].endswith(" (1234)")
    assert dups["choices"][1][0].endswith(" (1\u00a0234\u00a0567)"), dups["choices"]
    problems = H.filter_choices(Gui(services=services), "d", "en")[0]
    assert problems["choices"][-1] == ("empty text (12,345)", "empty_text"), problems["choices"]


@pytest.mark.parametrize("search, regex, low", [("case (", True, 0), ("", False, -5), ("", False, 10 ** 5000)],
                         ids=["bad-regex", "negative", "5000-digits"])
def test_mark_all_after_filters_that_cannot_be_used_marks_nothing(desk, search, regex, low):
    """The page said the filters cannot be used and showed no row; "Mark every matching row" then
    marked all 120 rows Drop (the view's query box held no filter at all)."""
    gui, ds = desk
    view = H.show(gui, ds, search, regex, *FILTERS[2:6], low, 0, "position", "", "en")
    assert "cannot be used" in view[0] and view[6] == ""
    out = H.mark_all(gui, ds, view[7], view[6], "drop", "en")
    assert "Nothing was changed" in out[0] and "Tokens from" in out[0] if low else "regular expression" in out[0]
    assert D.get_dataset(gui.ws, ds)["version"] == 0  # nothing was marked


def test_opening_the_review_tab_empties_the_exported_marks_box(services):
    """The marks file exported before kept being offered after another dataset was chosen (good-v5-marks.csv
    beside the new data; found in a browser walk): opening the tab empties it."""
    from webui.app import build_ui
    cfg = build_ui(services).get_config_file()
    ids = {c["props"].get("elem_id"): c["id"] for c in cfg["components"]}
    on_open = [d for d in cfg["dependencies"] if (ids["tab-review"], "select") in map(tuple, d["targets"])]
    assert any(ids["rv-export-file"] in d["outputs"] for d in on_open)


def test_filters_of_another_type_in_the_hidden_query_box_are_said_in_words(desk):
    """The hidden query box as a direct call sends it: a list or a number where a filter is words raised
    AttributeError (no .strip) or TypeError (unhashable), a 500; Next and Mark every matching row refuse it."""
    gui, ds = desk
    for q in ('{"search": [1]}', '{"search": 5}', '{"mark": ["a"]}', '{"lang": {"a": 1}}', '{"dup": 3}'):
        said = H.step(gui, 1, ds, q, "1", "en")[0]
        assert "These filters cannot be used" in said and "is not text" in said, (q, said)
        said = H.mark_all(gui, ds, q, "1", "drop", "ja")[0]
        assert "テキストではありません" in said, (q, said)
    assert D.get_dataset(gui.ws, ds)["version"] == 0


def test_a_row_marked_or_edited_in_another_session_since_it_was_shown_is_not_overwritten(desk):
    """Two reviewers on the same row: A marked it Keep with a note, then B, whose page still showed it
    unmarked, marked it Drop, and A's mark and note were replaced without a word. B is now told, shown
    the row as it is, and can mark again from there."""
    gui, ds = desk
    shown_a, shown_b = (H.view(gui, ds, H.filters(*FILTERS), "", "en", prefer=20) for _ in "ab")  # two pages, same row
    assert shown_a[6] == shown_b[6] == "20"
    a = H.mark_one(gui, "keep", ds, shown_a[7], "20", "A: fine", "en")                # session A
    assert a[0] == "✓ Marked row 20: Keep"
    b = H.mark_one(gui, "drop", ds, shown_b[7], "20", "B: wrong", "zh-CN")            # session B, still showing it unmarked
    assert "第 20 行在显示给你之后已被另一个窗口" in b[0] and b[7] == "20" and b[4] == "A: fine"
    assert open_marks(gui, ds) == {20: {"mark": "keep", "note": "A: fine"}}
    b = H.mark_one(gui, "drop", ds, b[8], "20", "B: wrong", "en")                     # B, having seen it
    assert b[0] == "✓ Marked row 20: Drop" and open_marks(gui, ds)[20]["note"] == "B: wrong"
    a = H.mark_one(gui, "fix", ds, shown_a[7], "20", "A again", "en")                 # A's page, before its view came back
    assert a[0].startswith("⚠ Row 20 was changed in another window") and open_marks(gui, ds)[20]["note"] == "B: wrong"
    # an edit: A's text saved, then B's page (showing the old text) saves its own
    shown_a, shown_b = (H.view(gui, ds, H.filters(*FILTERS), "", "en", prefer=21) for _ in "ab")
    path = shown_a[4]["value"]
    assert H.save_edit(gui, ds, shown_a[7], "21", path, "A's answer", "en")[0] == "✓ Saved the edit of row 21."
    b = H.save_edit(gui, ds, shown_b[7], "21", path, "B's answer", "en")
    assert b[0].startswith("⚠ Row 21 was changed in another window") and b[6] == "A's answer"
    assert H.undo(gui, ds, b[8], "21", "en")[6] != "A's answer"                         # Undo still takes A's edit back


def test_one_pages_quick_marks_of_a_row_are_its_own_not_another_windows(desk):
    """K then D pressed before the page had drawn K's answer: both send the view K was pressed on, and D
    was refused as "changed in another window". The page's own successive marks and edits of the row go
    through; the view's token is its own (another page's view of the same row has another)."""
    gui, ds = desk
    other = H.view(gui, ds, H.filters(*FILTERS), "", "en", prefer=20)     # another page on the same row
    shown = H.view(gui, ds, H.filters(*FILTERS), "", "en", prefer=20)
    assert H.mark_one(gui, "keep", ds, shown[7], "20", "", "en")[0] == "✓ Marked row 20: Keep"
    assert H.mark_one(gui, "drop", ds, shown[7], "20", "", "en")[0] == "✓ Marked row 20: Drop"
    assert H.mark_one(gui, "fix", ds, shown[7], "20", "check the dose", "en")[0] == "✓ Marked row 20: Needs fix"
    assert H.save_edit(gui, ds, shown[7], "20", shown[4]["value"], "new answer", "en")[0] == "✓ Saved the edit of row 20."
    assert open_marks(gui, ds)[20] == {"mark": "fix", "note": "check the dose"}
    said = H.mark_one(gui, "keep", ds, other[7], "20", "", "en")[0]       # the other page is not this one
    assert said.startswith("⚠ Row 20 was changed in another window") and open_marks(gui, ds)[20]["mark"] == "fix"


def test_a_mark_checks_and_changes_the_row_under_the_datasets_lock(desk, monkeypatch):
    """K and D of one page are two requests the server may run at once: D's check must come after K's
    mark, or D compares with the row before K and core refuses it ("changed while you were marking")."""
    gui, ds = desk
    held = []
    real_check, real_mark, real_edit = H.changed_since_shown, H.mark_rows, H.edit_turn
    monkeypatch.setattr(H, "changed_since_shown", lambda *a: held.append(H.desk_lock(ds).locked()) or real_check(*a))
    monkeypatch.setattr(H, "mark_rows", lambda *a, **k: held.append(H.desk_lock(ds).locked()) or real_mark(*a, **k))
    monkeypatch.setattr(H, "edit_turn", lambda *a, **k: held.append(H.desk_lock(ds).locked()) or real_edit(*a, **k))
    shown = H.view(gui, ds, H.filters(*FILTERS), "", "en", prefer=20)
    assert H.mark_one(gui, "keep", ds, shown[7], "20", "", "en")[0] == "✓ Marked row 20: Keep"
    assert H.save_edit(gui, ds, shown[7], "20", shown[4]["value"], "new", "en")[0] == "✓ Saved the edit of row 20."
    assert H.mark_all(gui, ds, shown[7], "20", "fix", "en")[0] == "✓ Marked 120 rows: Needs fix"
    assert held == [True] * 5, held


@pytest.mark.parametrize("mark", [None, "", "none", 5, ["drop"], "Drop"])
def test_a_bulk_mark_the_page_does_not_offer_is_refused_in_words(desk, mark):
    """review_mark_all called over HTTP with mark null cleared every mark (core reads no mark as "clear")."""
    gui, ds = desk
    shown = H.view(gui, ds, H.filters(*FILTERS), "", "en")
    H.mark_all(gui, ds, shown[7], shown[6], "keep", "en")
    out = H.mark_all(gui, ds, shown[7], shown[6], mark, "ko")
    assert out[0] == "⚠ " + tr("rv.bad_mark", "ko", marks=", ".join(tr(f"rv.mark.{m}", "ko") for m in H.BULK_MARKS)), out[0]
    assert H.mark_all(gui, ds, shown[7], shown[6], mark, "en")[0] == \
        "⚠ That is not one of the marks to choose (Keep, Drop, Needs fix, no mark), so nothing was changed."
    assert len(open_marks(gui, ds)) == 120 and D.get_dataset(gui.ws, ds)["version"] == 1


def test_a_bulk_mark_marks_the_rows_the_page_counted_not_rows_that_match_since(desk):
    """The bulk mark worked out its rows when clicked: a page showing the 1 row marked Keep, then another
    reviewer's Keep of row 5, and "Drop every matching row" dropped row 5 too, which this page never counted.
    Now nothing is marked and the rows are shown as they match now; the message says how many rows it marked."""
    gui, ds = desk
    H.mark_one(gui, "keep", ds, "", "3", "", "en")
    keep = H.filters("", False, H.ALL, "keep", H.ALL, H.ALL, 0, 0, "position")
    shown = H.view(gui, ds, keep, "", "en")
    assert "**1** of 120" in shown[0]
    H.mark_one(gui, "keep", ds, "", "5", "", "en")                                 # another reviewer
    out = H.mark_all(gui, ds, shown[7], shown[6], "drop", "en")
    assert out[0].startswith("⚠ The rows that match changed since they were shown here (matching then: 1; now: 2)"), out[0]
    assert {r: m["mark"] for r, m in open_marks(gui, ds).items()} == {3: "keep", 5: "keep"} and "**2** of 120" in out[1]
    assert H.mark_all(gui, ds, out[8], out[7], "drop", "en")[0] == "✓ Marked 2 rows: Drop"   # the view now shown
    assert H.mark_all(gui, ds, out[8], out[7], "drop", "en")[0].startswith("⚠ The rows that match changed")  # none are Keep now
    assert H.mark_all(gui, ds, '{"mark": "drop"}', "", "drop", "en")[0] == \
        "The matching rows have not been shown here yet, so nothing was marked: show them first (a filter, or Next)."


def open_marks(gui, ds):
    from core.data.review import open_desk
    return open_desk(gui.ws, ds).marks


def test_an_import_says_lines_it_did_not_use_apart_from_rows_not_found(desk, tmp_path):
    """An unknown mark or a row named twice was listed under "Rows not found: changed or removed since
    the export", which they were not; each is now said with its reason."""
    gui, ds = desk
    f = tmp_path / "m.csv"
    f.write_text("row,mark\n5,keep\n5,drop\n6,maybe\n999,keep\n", encoding="utf-8")
    from core.data.marks_csv import import_marks
    said = H.imported_markdown(import_marks(gui.ws, ds, f, origin="shell"), False, "en")
    assert "**Rows not found (1): changed or removed since the export**: line 5 (row 999)" in said
    assert "Lines of the file not used (2)" in said and "line 3**: row 5 is also on line 2" in said
    assert "line 4**: unknown mark 'maybe'" in said


def test_a_pairs_answers_are_named_chosen_and_rejected_in_the_turn_picker(services, tmp_path):
    """Both answers of a preference pair read "Assistant" in the turn picker, and the one chosen for
    editing by default was the rejected answer: an expert fixing "the answer" could edit the wrong one."""
    from core.data import import_file
    src = tmp_path / "pairs.jsonl"
    src.write_text('{"prompt": "2+2?", "chosen": "4", "rejected": "5"}\n', encoding="utf-8")
    gui = Gui(services=services)
    ds = import_file(gui.ws, src, "pairs.jsonl", origin="shell")["id"]
    turn = H.view(gui, ds, H.filters(*FILTERS), "", "zh-CN")[4]
    assert turn["choices"] == [("1. 用户", "prompt"), ("2. 助手 · " + tr("rv.chosen", "zh-CN"), "chosen"),
                               ("3. 助手 · " + tr("rv.rejected", "zh-CN"), "rejected")]


@pytest.mark.parametrize("names", ["x" * 9_000_000, ",".join(f"n{i}" for i in range(1001))], ids=["9MB", "1001-names"])
def test_names_no_person_would_give_are_refused_in_words_before_any_scan(desk, names):
    """A direct call's 9 MB "name" made a scan of 30 rows take 34 s (one pattern of it, tried on every text)."""
    gui, ds = desk
    said = H.scan(gui, ds, ["email"], names, "en")[0]
    assert said.startswith("⚠ The input has problems") and "give up to 1,000 names of up to 200 characters each" in said, said[:300]
    said = H.redact_some(gui, "all", ds, "", "", "", ["email"], names, "en")[0]
    assert "give up to 1,000 names" in said and D.get_dataset(gui.ws, ds)["version"] == 0
    assert H.turn_text(gui, "no-such-dataset", "1", "messages[0].content") == ""  # no NotFound raised to Gradio


@pytest.mark.parametrize("index", [[-1, 0], ["x", 0], [1.0, 0], [True, 0], "x", [], [10**30, 0]])
def test_a_click_in_the_findings_table_no_page_would_send_chooses_nothing(index):
    """The table's select event as a direct call sends it: index -1 chose the last finding, "x" raised
    TypeError (an HTTP 500 and a traceback in the log)."""
    import gradio as gr
    evt = gr.SelectData(None, {"index": index, "value": "x"})
    assert H.pick_hit("1:messages[0].content:0:email\n2:messages[0].content:0:email", evt) == (gr.skip(), gr.skip())
    assert H.pick_hit("1:a:0:email\n2:b:0:email", gr.SelectData(None, {"index": [1, 0], "value": "x"})) == ("2:b:0:email", "2")
