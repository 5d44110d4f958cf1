"""Preference pairs in a real browser: the Dataset tab shows a pair side by side with both answers
highlighted, the pair cleaning appears only for pairs, and a swap changes the shown pair (the
journey from template to chat is the lead's GUI test)."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from tests.webui.conftest import open_app, shot, tab
from tests.webui.test_browser import upload

pytestmark = pytest.mark.browser


def test_a_pair_side_by_side_and_a_swap(server, page, tmp_path):
    rows = [{"prompt": f"How do I light furnace {i}?", "chosen": f"Open the vent of furnace {i}, then light it gently.",
             "rejected": f"Just throw fire at furnace {i}."} for i in range(12)]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    open_app(page, server.url)
    tab(page, "Dataset")
    expect(page.locator("#ds-op-swap")).to_be_hidden()
    upload(page, pairs)
    expect(page.locator("#ds-summary")).to_contain_text("preference", timeout=60_000)
    expect(page.locator("#ds-pair-prompt")).to_contain_text("How do I light furnace 0?", timeout=120_000)
    chosen, rejected = page.locator("#ds-pair-chosen"), page.locator("#ds-pair-rejected")
    expect(chosen).to_contain_text("Open the vent of furnace 0")
    expect(rejected).to_contain_text("Just throw fire at furnace 0")
    expect(chosen.get_by_text("learned").first).to_be_visible()  # the answer is marked as learned
    expect(page.locator("#ds-rendered")).to_be_hidden()
    page.locator("#ds-swap-row input").fill("1")
    page.locator("#ds-op-swap").click()
    expect(page.locator("#ds-clean-message")).to_contain_text("row 1: chosen and rejected swapped", timeout=60_000)
    expect(chosen).to_contain_text("Just throw fire at furnace 0", timeout=60_000)
    shot(page, "dataset-preference-pair")
