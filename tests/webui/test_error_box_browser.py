"""Gradio's error box in a real browser: events that skip the queue showed none (Gradio's page drops their
error's `visible`), and the box's close button and heading stayed English for screen readers."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.messages import Msg
from tests.webui.conftest import open_app, shot, tab
from webui.i18n import say, tr

pytestmark = pytest.mark.browser


def test_download_of_a_deleted_file_is_said_in_the_error_box_in_the_pages_words(server, page):
    open_app(page, server.url)
    page.get_by_label("日本語").check()
    page.locator("#tpl-demo").click()
    expect(page.locator("#tpl-chosen")).to_contain_text("demo")
    tab(page, tr("tab.dataset", "ja"))
    expect(page.locator("#ds-summary")).to_contain_text("demo.jsonl", timeout=60_000)
    for data in server.home.glob("datasets/*/original/*"):  # deleted by hand, as the message supposes
        data.unlink()
    page.locator("#ds-download").click()
    box = page.locator(".toast-body.error")
    expect(box).to_contain_text(say(Msg("store.data_gone", name="demo.jsonl", version=0), "ja"))
    expect(box.locator(".toast-title")).to_have_text(tr("app.error_title", "ja"))
    expect(box.get_by_role("button", name=tr("app.close", "ja"), exact=True)).to_be_visible()
    shot(page, "error-box-ja")
