"""Numbers typed into the settings' boxes in a real browser: the page's number is a JavaScript number, so
what reaches the check is not always what was typed."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.webui.conftest import open_app, tab

pytestmark = pytest.mark.browser


def test_a_20_digit_number_is_quoted_back_as_typed(server, page):
    """12345678901234567890 typed as the LoRA rank was quoted back as 12345678901234567000."""
    open_app(page, server.url)
    tab(page, "Hyperparameters")
    box = page.locator("#cfg-lora_rank input[type=number]")
    box.fill("12345678901234567890")
    box.press("Tab")
    expect(page.locator("#hp-problems")).to_contain_text("got 12345678901234567890 ")
