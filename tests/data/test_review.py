"""The review desk's core: find rows, mark them (a version each, Undo works, training reads the
reviewed rows), edit a turn, redact, diff two versions, split the work over a CSV of marks."""
import csv
import json

import pytest

from core.data import apply_op, get_dataset, import_file, training_settings, undo
from core.data.conversation import conversation, set_path
from core.data.diff import diff_versions
from core.data.marks_csv import import_marks
from core.data.review import Filters, choices, counts, open_desk, select
from core.data.review_actions import edit_turn, export_marks, mark_rows, redact, row_view, scan_dataset
from core.data.review_index import guess_language
from core.errors import InputError
from tests.data.helpers import chat, write_jsonl
from tests.data.review_data import make_rows, write_rows


@pytest.fixture
def ds(ws, tmp_path):
    """400 generated conversations: five languages, near duplicates, empty answers, sensitive data."""
    return import_file(ws, write_rows(tmp_path / "conv.jsonl", make_rows(400)), "conv.jsonl", origin="shell")["id"]


def rows_of(desk, sel):
    return [int(desk.index.rows[i]) for i in sel]


def test_search_words_phrases_and_regex_in_any_case(ws, ds):
    desk = open_desk(ws, ds)
    assert rows_of(desk, select(desk, Filters(search='"(CASE 12)"'))) == [12]         # a phrase, any case
    assert rows_of(desk, select(desk, Filters(search="12) CASE"))) == [12, 112, 212, 312]   # words: all, anywhere
    assert rows_of(desk, select(desk, Filters(search=r"case 1[0-2]\)", regex=True))) == [10, 11, 12]
    text = [" ".join(m["content"] for m in r["messages"]).casefold() for r in make_rows(400)]
    assert rows_of(desk, select(desk, Filters(search="Insulin"))) == [i + 1 for i, t in enumerate(text) if "insulin" in t]
    with pytest.raises(InputError, match="regular expression"):
        select(desk, Filters(search="case (", regex=True))


def test_a_regex_that_backtracks_without_end_is_stopped_and_refused_while_others_answer(ws, tmp_path, monkeypatch):
    """(\\w+\\w+)+\\1! tries 4x longer for every 2 letters of a row (13 s on 28 here; 40 letters: days), and
    Python's `re` holds the interpreter lock while it tries: one such search (sent from the Review tab)
    stopped the whole GUI server, no page answered again. It is stopped at the budget and refused in
    words; other threads run meanwhile; ordinary patterns still find their rows."""
    import threading
    import time

    from core.data import review
    rows = [chat("a" * 28, "ok"), chat("case 7!", "bbb")]
    desk = open_desk(ws, import_file(ws, write_jsonl(tmp_path / "long.jsonl", rows), "long.jsonl", origin="shell")["id"])
    monkeypatch.setattr(review, "REGEX_BUDGET_S", 1.0, raising=False)
    ticks, done = [0], threading.Event()

    def other_page():  # pure Python, like every other request of the server
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.01)
    threading.Thread(target=other_page, daemon=True).start()
    t0 = time.monotonic()
    try:
        with pytest.raises(InputError, match="took longer than 1 s") as e:
            select(desk, Filters(search=r"(\w+\w+)+\1!", regex=True))
    finally:
        took = time.monotonic() - t0
        done.set()
    assert took < 5 and ticks[0] > 20, (took, ticks[0])
    assert "(a+)+" in str(e.value) and e.value.problems[0].where == "search"
    assert rows_of(desk, select(desk, Filters(search=r"(\w)\1\1", regex=True))) == [1, 2]
    assert rows_of(desk, select(desk, Filters(search=r"case \d!", regex=True))) == [2]


def test_filters_combine_and_counts_follow(ws, ds):
    desk = open_desk(ws, ds)
    empty = rows_of(desk, select(desk, Filters(problem="empty_text")))
    assert empty == [i + 1 for i in range(400) if i % 97 == 5]
    assert select(desk, Filters(problem="none")).size == 400 - len(empty)
    zh = select(desk, Filters(lang="zh"))
    assert len(zh) == 40 and all("关于" in desk.index.texts[i] or "请用" in desk.index.texts[i] for i in zh)
    dups = select(desk, Filters(dup="any", sort="duplicates"))
    assert len(dups) == 20 and [int(desk.index.dup[i]) for i in dups[:2]] == [1, 1]   # a group's rows side by side
    assert rows_of(desk, select(desk, Filters(dup="1"))) == [21, 22]
    longest = select(desk, Filters(sort="longest", min_tokens=10, max_tokens=60))
    toks = desk.index.tokens[longest]
    assert list(toks) == sorted(toks, reverse=True) and toks.min() >= 10 and toks.max() <= 60
    c = choices(desk)
    assert c["problems"] == {"empty_text": len(empty)} and c["langs"]["zh"] == 40 and c["dup_groups"] == 10
    assert counts(desk, zh)["matched"] == 40


def test_marks_are_versions_and_training_reads_the_reviewed_rows(ws, ds):
    before = get_dataset(ws, ds)
    res = mark_rows(ws, ds, [3, 5], "drop", note="wrong answer")
    info = res["dataset"]
    assert res["changed"] and info["version"] == before["version"] + 1
    assert info["current_sha256"] == before["current_sha256"]          # the data is the same, the marks are new
    train = training_settings(ws, ds)["dataset"]
    kept = [json.loads(line) for line in open(train, encoding="utf-8")]
    assert len(kept) == 398 and make_rows(400)[2] not in kept         # rows 3 and 5 are left out of training
    mark_rows(ws, ds, [7], "keep")
    mark_rows(ws, ds, [8], "fix", note="dose is wrong")
    desk = open_desk(ws, ds)
    assert rows_of(desk, select(desk, Filters(mark="drop"))) == [3, 5]
    assert rows_of(desk, select(desk, Filters(mark="unreviewed"))).__len__() == 396
    c = counts(desk, select(desk, Filters()))
    assert (c["keep"], c["drop"], c["fix"], c["reviewed"], c["share"]) == (1, 2, 1, 4, 0.01)
    assert row_view(desk, 8)["note"] == "dose is wrong"
    assert mark_rows(ws, ds, [7], "keep")["changed"] is False         # nothing new: no version
    undo(ws, ds)
    undo(ws, ds)
    desk = open_desk(ws, ds)
    assert desk.marks == {3: {"mark": "drop", "note": "wrong answer"}, 5: {"mark": "drop", "note": "wrong answer"}}
    undo(ws, ds)
    assert training_settings(ws, ds)["dataset"] == get_dataset(ws, ds)["current_path"]   # no marks: the data itself


def test_marks_follow_their_rows_through_cleaning(ws, ds):
    mark_rows(ws, ds, [22, 30], "drop")                               # row 22 is the near duplicate of row 21
    mark_rows(ws, ds, [40], "keep")
    apply_op(ws, ds, "delete", rows="1,2")
    desk = open_desk(ws, ds)
    assert {r: v["mark"] for r, v in desk.marks.items()} == {20: "drop", 28: "drop", 38: "keep"}
    assert row_view(desk, 38)["record"] == make_rows(400)[39]


def test_edit_a_turn_in_place_keeps_the_mark(ws, ds):
    mark_rows(ws, ds, [9], "fix")
    desk = open_desk(ws, ds)
    path = row_view(desk, 9)["conversation"]["turns"][-1]["path"]
    res = edit_turn(ws, ds, 9, path, "The corrected answer.")
    assert res["changed"] and res["summary"] == "row 9 changed"
    desk = open_desk(ws, ds)
    view = row_view(desk, 9)
    assert view["conversation"]["turns"][-1]["text"] == "The corrected answer." and view["mark"] == "fix"
    with pytest.raises(InputError, match="not a text of this row"):
        edit_turn(ws, ds, 9, "messages[9].content", "x")


def test_scan_and_redact_one_finding_one_kind_or_all(ws, ds):
    found = scan_dataset(ws, ds)
    assert found["rows"] == 400 and {h["row"] for h in found["hits"]} == {i + 1 for i in range(400) if i % 50 == 7}
    first_email = next(h for h in found["hits"] if h["kind"] == "email")
    redact(ws, ds, hits=[first_email["id"]])
    after = scan_dataset(ws, ds)
    assert len(after["hits"]) == len(found["hits"]) - 1 and first_email["id"] not in {h["id"] for h in after["hits"]}
    assert "[EMAIL]" in json.dumps(row_view(open_desk(ws, ds), first_email["row"])["record"])
    redact(ws, ds, kinds=["card"])
    assert "card" not in scan_dataset(ws, ds)["counts"]
    redact(ws, ds)
    assert scan_dataset(ws, ds)["hits"] == []
    undo(ws, ds)
    assert scan_dataset(ws, ds)["counts"].get("card") is None and scan_dataset(ws, ds)["hits"]


def test_diff_shows_added_removed_changed_and_marks(ws, ds):
    apply_op(ws, ds, "delete", rows="4")
    edit_turn(ws, ds, 9, "messages[1].content", "changed")
    mark_rows(ws, ds, [1], "drop")
    d = diff_versions(ws, ds, 0, 3)
    assert (d["removed"], d["changed"], d["added"], d["marks_changed"]) == (1, 1, 0, 1)
    changed = next(i for i in d["items"] if i["status"] == "changed")
    assert changed["row_a"] == 10 and changed["row_b"] == 9 and changed["after"]["messages"][1]["content"] == "changed"
    assert d["marks"] == [{"row": 1, "before": "", "after": "drop", "note_before": "", "note_after": ""}]
    assert diff_versions(ws, ds)["marks_changed"] == 1 and diff_versions(ws, ds)["items"] == []


def test_two_reviewers_split_the_work_and_conflicts_are_listed(ws, ds, tmp_path):
    mark_rows(ws, ds, [1, 2], "keep")
    mark_rows(ws, ds, [3], "drop")
    theirs = export_marks(ws, ds, tmp_path / "anna.csv")
    undo(ws, ds)
    undo(ws, ds)                                                      # "me": a fresh start on the same data
    mark_rows(ws, ds, [2], "drop", note="off topic")                  # a conflict with Anna's Keep
    apply_op(ws, ds, "delete", rows="1")                              # rows move up by one; Anna's row 1 is gone
    res = import_marks(ws, ds, theirs, origin="shell")
    assert res["conflicts"] == [{"row": 1, "mine": "drop", "mine_note": "off topic", "theirs": "keep", "theirs_note": ""}]
    assert [p.where for p in res["problems"]] == ["line 2 (row 1)"]
    marks = open_desk(ws, ds).marks
    assert marks == {1: {"mark": "drop", "note": "off topic"}, 2: {"mark": "drop", "note": ""}}   # Anna's row 3, moved
    res = import_marks(ws, ds, theirs, prefer="theirs", origin="shell")
    assert "resolved with the file's mark" in res["summary"] and open_desk(ws, ds).marks[1]["mark"] == "keep"


def test_a_broken_marks_file_is_refused_in_words(ws, ds, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("line,verdict\n1,keep\n", encoding="utf-8")
    with pytest.raises(InputError, match="row, mark"):
        import_marks(ws, ds, bad, origin="shell")
    bad.write_text("row,mark\n1,maybe\n", encoding="utf-8")
    assert "unknown mark" in import_marks(ws, ds, bad, origin="shell")["problems"][0].message
    # hostile files (a marks file may come from anyone): each stopped the import with a bare exception
    bad.write_text("row,mark,note\n1,keep,ok\n2,keep," + "x" * 200_000 + "\n", encoding="utf-8")
    for limit in (131_072, 2**31 - 1):  # csv's default, and the limit after a dataset read raised it
        before = csv.field_size_limit(limit)
        try:
            with pytest.raises(InputError, match="a cell longer than 131,072 characters on line 3"):
                import_marks(ws, ds, bad, origin="shell")           # was csv.Error
        finally:
            csv.field_size_limit(before)
    bad.write_text("row,mark\n" + "9" * 5000 + ",keep\n\u0661,drop\n", encoding="utf-8")
    res = import_marks(ws, ds, bad, origin="shell")                 # was ValueError (int() of 5,000 digits)
    assert res["applied"] == 0 and len(res["problems"]) == 2        # '١' is no row number: int() read it as 1
    assert all(len(p.where) < 200 for p in res["problems"]) and open_desk(ws, ds).marks == {}


def test_preference_pairs_show_both_answers_and_paths_edit_the_users_columns():
    conv = conversation({"prompt": "Q?", "chosen": "Good.", "rejected": "Bad."}, "prompt_completion", {"completion": "chosen"})
    assert [t["text"] for t in conv["turns"]] == ["Q?"]
    assert [(a["label"], a["turns"][0]["text"]) for a in conv["answers"]] == [("chosen", "Good."), ("rejected", "Bad.")]
    rec = {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
    turns = conversation(rec, "sharegpt")["turns"]
    assert [(t["role"], t["path"]) for t in turns] == [("user", "conversations[0].value"), ("assistant", "conversations[1].value")]
    set_path(rec, turns[1]["path"], "hey")
    assert rec["conversations"][1]["value"] == "hey"
    alp = conversation({"instruction": "Sum", "input": "", "output": "4"}, "alpaca")["turns"]
    assert [(t["role"], t["text"]) for t in alp] == [("user", "Sum"), ("assistant", "4")]


def test_language_guesses():
    assert guess_language("What is the best way to store tea?") == "en"
    assert guess_language("请问这个怎么用？") == "zh" and guess_language("これは何ですか") == "ja"
    assert guess_language("Wie ist das Wetter, und ist es nicht kalt?") == "de" and guess_language("12345") == ""


def test_rows_of_other_formats_are_found_by_their_record_number(ws, tmp_path):
    src = tmp_path / "qa.csv"
    src.write_text('question,answer\nQ1,"two\nlines"\nQ2,mail ann@example.com\n', encoding="utf-8")
    ds = import_file(ws, src, "qa.csv", origin="shell")["id"]
    desk = open_desk(ws, ds)
    view = row_view(desk, 2)
    assert view["line"] == 4 and view["hits"][0]["kind"] == "email"
    assert [t["role"] for t in view["conversation"]["turns"]] == ["user", "assistant"]
    write_jsonl(tmp_path / "x.jsonl", [chat()])


def test_the_index_after_an_edit_is_what_a_rebuild_gives(ws, ds, monkeypatch):
    """edit_turn derives the new version's index from the old one (fast); it must equal a re-read."""
    from core.data import review_index
    build_index = review_index.build_index
    apply_op(ws, ds, "delete", rows="400")                          # a version Danlu wrote: row N on line N
    open_desk(ws, ds)
    monkeypatch.setattr(review_index, "build_index", lambda *a, **k: pytest.fail("the whole file was read again"))
    edit_turn(ws, ds, 21, "messages[1].content", "")                  # row 21: near duplicate of 22, now empty
    edit_turn(ws, ds, 3, "messages[1].content", "请问这个怎么用？")
    derived = open_desk(ws, ds).index
    monkeypatch.undo()
    fresh = build_index(get_dataset(ws, ds)["current_path"])
    assert derived.raw == fresh.raw and derived.texts == fresh.texts and derived.langs == fresh.langs
    for name in ("tokens", "dup", "rows", "lines"):
        assert (getattr(derived, name) == getattr(fresh, name)).all(), name
    assert [derived.langs[c] for c in derived.lang] == [fresh.langs[c] for c in fresh.lang]
    bits = lambda idx: [{c for b, c in enumerate(idx.codes) if (int(m) >> b) & 1} for m in idx.problems]  # noqa: E731
    assert bits(derived) == bits(fresh)


def test_an_exported_note_that_a_spreadsheet_would_run_stays_text_and_comes_back_as_written(ws, ds, tmp_path):
    """A note starting with = + - @ was written as it is: opened in a spreadsheet, =cmd|' /C calc'!A0
    ran as a formula (CSV injection). It is written after a ' and read back without it."""
    notes = {1: "=cmd|' /C calc'!A0", 2: "+1 dose", 3: "-5 mg", 4: "@SUM(A1)", 5: "'quoted' stays", 6: "plain"}
    for row, note in notes.items():
        mark_rows(ws, ds, [row], "fix", note=note)
    out = export_marks(ws, ds, tmp_path / "marks.csv")
    cells = {int(r["row"]): r["note"] for r in csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines())}
    assert all(cells[r][0] not in "=+-@" for r in notes), cells
    assert cells[1] == "'=cmd|' /C calc'!A0" and cells[5] == "'quoted' stays" and cells[6] == "plain"
    for _ in notes:
        undo(ws, ds)
    assert open_desk(ws, ds).marks == {}
    import_marks(ws, ds, out, origin="shell")
    assert {r: m["note"] for r, m in open_desk(ws, ds).marks.items()} == notes


def test_an_edit_longer_than_a_row_may_be_is_refused_and_the_version_stays_readable(ws, ds):
    """An 8 MB text saved into a turn was said as saved; the new version's row 1 was then a line the
    readers refuse, so every later mark, redaction and the training file found the dataset unreadable."""
    before = get_dataset(ws, ds)["current_sha256"]
    with pytest.raises(InputError, match="the record is 8,389,130 bytes; the limit is 8,388,608 bytes — a record this long") as e:
        edit_turn(ws, ds, 1, "messages[1].content", "x" * (8 << 20))
    assert e.value.problems[0].where == "edit record (row 1)"
    assert get_dataset(ws, ds)["current_sha256"] == before
    edit_turn(ws, ds, 1, "messages[1].content", "x" * (7 << 20))     # under the limit: saved, and read back
    mark_rows(ws, ds, [2], "drop")
    assert open_desk(ws, ds).index.record(0)["messages"][1]["content"] == "x" * (7 << 20)


def test_a_row_named_twice_in_a_marks_file_is_no_conflict_with_this_dataset(ws, ds, tmp_path):
    """Row 5 unmarked here, the file marking it Keep then Drop: the import listed a conflict whose mark
    "here" was the file's own first line (Keep a) and counted the third line as already the same."""
    f = tmp_path / "dup.csv"
    f.write_text("row,mark,note\n5,keep,a\n5,drop,b\n5,keep,c\n", encoding="utf-8")
    res = import_marks(ws, ds, f, origin="shell")
    assert res["conflicts"] == [] and res["same"] == 0 and res["applied"] == 1
    assert [(p.where, p.message) for p in res["problems"]] == [
        ("line 3", "row 5 is also on line 2 of this file, marked differently; that line was taken")]
    assert open_desk(ws, ds).marks == {5: {"mark": "keep", "note": "a"}}


def test_a_data_file_removed_from_the_store_by_hand_is_said_by_every_desk_action(ws, ds):
    """The desk's index is remembered per version: with the file deleted it still showed the rows, and an
    edit, a scan or a comparison raised FileNotFoundError (a 500 on the page); so did the Dataset tab's
    Download and its rows."""
    import os
    from pathlib import Path

    from core.data import dataset_rows, export_path
    from core.errors import NotFound
    open_desk(ws, ds)                                                # remembered, as the page has it
    path = Path(get_dataset(ws, ds)["current_path"])
    os.chmod(path.parent, 0o755)
    path.unlink()
    for act in (lambda: open_desk(ws, ds), lambda: mark_rows(ws, ds, [1], "drop"), lambda: scan_dataset(ws, ds),
                lambda: edit_turn(ws, ds, 1, "messages[1].content", "x"), lambda: diff_versions(ws, ds),
                lambda: export_path(ws, ds), lambda: dataset_rows(ws, ds)):
        with pytest.raises(NotFound, match=r"the data file of conv.jsonl \(version 0\) is missing from the workspace"):
            act()


def test_a_mark_that_drops_no_other_row_keeps_the_training_file_without_reading_every_row(ws, ds, monkeypatch):
    """Once a row was marked Drop, every later Keep, Needs fix or note re-read and rewrote every row of the
    version into a new training file (half a second a click on 50,000 rows); the same drops now keep it."""
    from core.data import marks as marks_mod
    mark_rows(ws, ds, [3], "drop")
    train = get_dataset(ws, ds)["training_path"]

    def reread(*a, **k):
        raise AssertionError("the training file was written again")
    monkeypatch.setattr(marks_mod, "training_fields", reread)
    mark_rows(ws, ds, [4], "keep")
    mark_rows(ws, ds, [3], "drop", note="off topic")
    f = ws.root / "m.csv"
    f.write_text("row,mark\n5,fix\n", encoding="utf-8")
    import_marks(ws, ds, f, origin="shell")
    assert get_dataset(ws, ds)["training_path"] == train and training_settings(ws, ds)["dataset"] == train
    monkeypatch.undo()
    mark_rows(ws, ds, [6], "drop")                                   # another drop: a new training file
    assert get_dataset(ws, ds)["training_path"] != train
    assert sum(1 for _ in open(get_dataset(ws, ds)["training_path"], encoding="utf-8")) == 398


def test_a_regex_stopped_for_its_time_is_refused_again_at_once(ws, tmp_path, monkeypatch):
    """The page keeps the filters it used: after a refusal every Next, mark or Undo searched again with the
    same pattern, the budget (15 s) each time, for the same answer."""
    from core.data import review
    rows = [chat("a" * 28, "ok"), chat("case 7!", "bbb")]
    desk = open_desk(ws, import_file(ws, write_jsonl(tmp_path / "long.jsonl", rows), "long.jsonl", origin="shell")["id"])
    monkeypatch.setattr(review, "REGEX_BUDGET_S", 0.5, raising=False)
    slow = Filters(search=r"(\w+\w+)+\1!", regex=True)
    with pytest.raises(InputError, match="took longer than"):
        select(desk, slow)
    monkeypatch.setattr(review, "bounded_regex_mask", lambda *a, **k: pytest.fail("searched again"))
    with pytest.raises(InputError, match="took longer than") as e:
        select(desk, slow)
    assert e.value.problems[0].where == "search"
