"""The Review tab in a real browser on a generated 5,000-row dataset: search, filter, keyboard mark,
bulk-drop, edit a turn, scan and redact, diff, undo; the `dataset` setting training uses is the
reviewed version throughout."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from core.data import list_datasets
from core.data.review import Filters, select
from core.data.review_index import build_index
from core.workspace import Workspace
from tests.data.review_data import make_rows, write_rows
from tests.webui.conftest import open_app, shot, tab
from tests.webui.test_browser import upload

pytestmark = pytest.mark.browser


def pick(page, elem: str, option: str) -> None:
    """Choose an option of a Gradio dropdown by its visible text."""
    page.locator(f"#{elem} input").click()
    page.get_by_role("option", name=option).click()


def search(page, text: str) -> None:
    box = page.locator("#rv-search textarea")
    box.fill(text)
    box.press("Enter")


def training_file(page, home) -> list[str]:
    """The rows of the file the `dataset` setting (what Start training uses) points at."""
    path = page.locator("#cfg-dataset textarea, #cfg-dataset input").first.input_value()
    info = list_datasets(Workspace.open(home))[0]
    assert path == info["training_path"], (path, info["training_path"])
    return open(path, encoding="utf-8").read().splitlines()


def compare_then_undo(page, server, empty: int) -> None:
    """Versions: what "replace all" changed, then Undo brings the rows before it back."""
    page.locator("#rv-versions-box").click()                            # what the last step changed
    page.locator("#rv-compare").click()
    expect(page.locator("#rv-diff")).to_contain_text("98 changed", timeout=60_000)
    expect(page.locator("#rv-diff ins").first).to_contain_text("[")
    shot(page, "review-desk")

    page.locator("#rv-undo").click()                                    # undo "replace all"
    expect(page.locator("#rv-message")).to_contain_text("Undid the last change")
    rows = training_file(page, server.home)
    assert len(rows) == 5000 - empty and sum("[EMAIL]" in r for r in rows) == 1
    assert any("a reviewer rewrote this answer" in r for r in rows) and sum("[CARD]" in r for r in rows) == 0
    assert all(json.loads(r)["messages"][-1]["content"] for r in rows)  # the dropped empty answers are not trained on


def test_review_a_5000_row_dataset_in_the_browser(server, page, tmp_path):
    data = write_rows(tmp_path / "support.jsonl", make_rows(5000))
    idx = build_index(data)
    warranty = len(select(idx, Filters(search="warranty")))
    empty = len(select(idx, Filters(problem="empty_text")))
    open_app(page, server.url)
    tab(page, "Dataset")
    upload(page, data)
    expect(page.locator("#ds-summary")).to_contain_text("rows: 5000", timeout=60_000)

    tab(page, "Review")
    counts = page.locator("#rv-counts")
    expect(counts).to_contain_text("of 5,000 rows match", timeout=60_000)
    search(page, "warranty")
    expect(counts).to_contain_text(f"{warranty:,} of 5,000 rows match")
    expect(page.locator("#rv-chat mark.rv-find").first).to_contain_text(re.compile("warranty", re.I))
    page.keyboard.press("Escape")                                      # out of the search box; the keys: next row, Keep
    page.keyboard.press("ArrowRight")
    expect(page.locator("#rv-position")).to_contain_text(f"2 of {warranty:,}")
    page.keyboard.press("k")
    expect(page.locator("#rv-message")).to_contain_text("Marked row")
    expect(counts).to_contain_text("1 Keep")

    search(page, "")
    pick(page, "rv-problem", f"empty text ({empty})")                  # filter, then drop them all
    expect(counts).to_contain_text(f"{empty:,} of 5,000 rows match")
    page.locator("#rv-bulk").click()
    expect(page.locator("#rv-message")).to_contain_text(f"Marked {empty:,} rows: Drop")
    expect(counts).to_contain_text(f"Training uses {5000 - empty:,} rows")
    assert len(training_file(page, server.home)) == 5000 - empty

    pick(page, "rv-problem", "all")
    search(page, '"(case 8)"')                                          # row 8 holds an e-mail address
    expect(page.locator("#rv-position")).to_contain_text("Row 8")
    edit = page.locator("#rv-edit-text textarea")
    edit.fill("Please write to user7@example.com; a reviewer rewrote this answer.")
    page.locator("#rv-save-edit").click()
    expect(page.locator("#rv-message")).to_contain_text("Saved the edit of row 8")
    expect(page.locator("#rv-chat")).to_contain_text("a reviewer rewrote this answer")

    page.locator("#rv-scan").click()                                    # scan, replace one finding, then all
    expect(page.locator("#rv-scan-summary")).to_contain_text("findings in 5,000 rows", timeout=60_000)
    page.locator("#rv-hits").get_by_role("gridcell", name="user7@example.com").click()
    expect(page.locator("#rv-chat mark.rv-pii")).to_contain_text("user7@example.com")
    page.locator("#rv-redact-one").click()
    expect(page.locator("#rv-message")).to_contain_text("Replaced with placeholders", timeout=60_000)
    expect(page.locator("#rv-chat")).to_contain_text("[EMAIL]")
    hits = page.locator("#rv-hits")                                     # the table lists what is left
    expect(hits.get_by_role("gridcell", name="user7@example.com")).to_have_count(0, timeout=60_000)
    expect(hits.get_by_role("gridcell", name="[EMAIL]")).to_have_count(0)
    page.locator("#rv-redact-all").click()
    expect(page.locator("#rv-message")).to_contain_text("rows changed: 98", timeout=60_000)
    expect(page.locator("#rv-scan-summary")).to_contain_text("0 findings in 5,000 rows", timeout=60_000)
    rows = training_file(page, server.home)
    assert not [r for r in rows if "@example.com" in r] and sum("[CARD]" in r for r in rows) == 20

    compare_then_undo(page, server, empty)
