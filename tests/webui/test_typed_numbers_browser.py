"""Numbers typed into the settings' boxes in a real browser: the page's number is a JavaScript number, so
what reaches the check is not always what was typed."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.webui.conftest import open_app, tab
from webui.i18n import tr

pytestmark = pytest.mark.browser


def test_a_20_digit_number_is_quoted_back_as_typed(server, page):
    """12345678901234567890 typed as the LoRA rank was quoted back as 12345678901234567000."""
    open_app(page, server.url)
    tab(page, "Hyperparameters")
    box = page.locator("#cfg-lora_rank input[type=number]")
    box.fill("12345678901234567890")
    box.press("Tab")
    expect(page.locator("#hp-problems")).to_contain_text("got 12345678901234567890 ")


def test_a_decimal_comma_typed_in_the_spanish_page_is_taken_as_the_point_and_said(server, page):
    """A number box takes no comma: the browser dropped it, and 0,0002 typed as the learning rate became 2."""
    open_app(page, server.url)
    page.get_by_label("Español").check()
    tab(page, tr("tab.hyperparams", "es"))
    box = page.locator("#cfg-learning_rate input[type=number]")
    box.fill("")
    box.press_sequentially("0,0002")
    expect(box).to_have_value("0.0002")
    assert box.evaluate("input => input.validationMessage") == tr("app.decimal_point", "es")
    box.press("Tab")
    page.wait_for_function("() => window.danluSettings && window.danluSettings.learning_rate === 0.0002")
