"""Numbers typed into the settings' boxes in a real browser: the page's number is a JavaScript number, so
what reaches the check is not always what was typed."""
from __future__ import annotations

import contextlib

import pytest
from playwright.sync_api import expect

from core import jobs as J
from core.services import Services
from tests.webui.conftest import FAKE_RECIPE, live_server, open_app, tab
from core.messages import Msg, label
from webui.i18n import LANGUAGES, say, tr

LANGUAGES_BY_CODE = [(code, name) for name, code in LANGUAGES]

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


def test_a_20_digit_number_in_the_other_whole_number_boxes_is_quoted_back_as_typed(home, browser):
    """The process count and Evaluate's prompt count quoted 12345678901234567890 back as 12345678901234567000
    (the page's JavaScript number); their refusal, in the page's language, names the box and quotes what was typed."""
    store = Services.create(home).store
    run_dir = home / "runs" / "plain"
    run_dir.mkdir(parents=True)
    job = store.create(kind="train", name="plain", run_dir=str(run_dir))
    for state in (J.STARTING, J.RUNNING, J.SUCCEEDED):
        store.transition(job.id, state)
    with fake_training_page(home, browser, "es-ES") as page:
        page.locator("#tpl-demo").click()
        tab(page, tr("tab.train", "es"))
        for box_id, button, line, label in (("train-nproc", "train.start", "#train-message", "train.nproc"),
                                            ("ev-max-samples", "ev.start", "#ev-status", "ev.max_samples")):
            if box_id == "ev-max-samples":
                tab(page, tr("tab.evaluate", "es"))
            box = page.locator(f"#{box_id} input[type=number]")
            box.fill("12345678901234567890")
            box.press("Tab")
            page.get_by_role("button", name=tr(button, "es")).click()
            expect(page.locator(line)).to_contain_text(tr(label, "es"))
            expect(page.locator(line)).to_contain_text(" 12345678901234567890")


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_a_decimal_comma_typed_in_the_other_pages_is_refused_and_grouping_is_kept(server, page, lang):
    """0,0002 typed as the learning rate on the Japanese and Korean pages became 2 (the browser dropped the
    comma as grouping): it is refused, quoted as typed; 1,000 still reads as 1000."""
    open_app(page, server.url)
    page.get_by_label(dict(LANGUAGES_BY_CODE)[lang]).check()
    tab(page, tr("tab.hyperparams", lang))
    box = page.locator("#cfg-learning_rate input[type=number]")
    box.fill("")
    box.press_sequentially("0,0002")
    box.press("Tab")
    page.wait_for_function("() => window.danluSettings && window.danluSettings.learning_rate === '0,0002'")
    said = say(Msg("config.decimal_comma", label=label("learning_rate"), value="0,0002"), lang)
    expect(page.locator("#hp-problems")).to_contain_text(said)
    steps = page.locator("#cfg-save_steps input[type=number]")
    steps.fill("")
    steps.press_sequentially("1,000")
    steps.press("Tab")
    page.wait_for_function("() => window.danluSettings && window.danluSettings.save_steps === 1000")


def test_a_decimal_comma_in_a_whole_number_box_is_refused_not_read_as_grouping(home, browser):
    """1,5 typed as the process count on the Japanese page became 15: it is refused, quoted as typed."""
    with fake_training_page(home, browser, "ja-JP") as page:
        page.get_by_label("日本語").check()
        page.locator("#tpl-demo").click()
        tab(page, tr("tab.train", "ja"))
        box = page.locator("#train-nproc input[type=number]")
        box.fill("")
        box.press_sequentially("1,5")
        box.press("Tab")
        page.get_by_role("button", name=tr("train.start", "ja")).click()
        expect(page.locator("#train-message")).to_contain_text(say(Msg("any.decimal_comma", value="1,5"), "ja"))


@contextlib.contextmanager
def fake_training_page(home, browser, locale: str):
    """The app's page in a browser of `locale`, on a server whose training is the fake recipe."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    try:
        with live_server(home, env={"DANLU_GUI_TEST_TRAIN_MODULE": FAKE_RECIPE}) as server:
            page = ctx.new_page()
            open_app(page, server.url)
            yield page
    finally:
        ctx.close()
