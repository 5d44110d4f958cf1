"""Small things the browser walks saw on the page: plot ticks, the Evaluate intro of a DPO run."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core import jobs as J
from core.services import Services
from tests.webui.conftest import live_server, open_app, shot, tab
from tests.webui.test_browser import fake_job_page, start_demo_training
from webui.i18n import tr

pytestmark = pytest.mark.browser


def plot_texts(page, elem_id: str) -> list[str]:
    return page.evaluate("id => [...document.querySelectorAll('#' + id + ' svg text')].map(t => t.textContent)", elem_id)


def test_a_run_with_one_logged_point_has_plain_numbers_on_its_axes(home, browser):
    """One point makes a one-value axis, whose ticks Vega-Lite wrote as '1.000000' (step), '2.727273' (loss)."""
    with fake_job_page(home, browser, steps=1, step_s=0.05) as page:
        start_demo_training(page)
        expect(page.locator("#train-status")).to_contain_text("Succeeded", timeout=120_000)
        expect(page.locator("#train-loss-plot svg text").first).to_be_attached()
        page.wait_for_timeout(1000)  # the last redraw
        texts = plot_texts(page, "train-loss-plot") + plot_texts(page, "train-lr-plot")
        assert "1" in texts and "2.72727" in texts, texts  # the step and the loss of the one point
        assert not [t for t in texts if re.search(r"\.\d*0000", t)], texts


def test_the_evaluate_tab_of_an_english_page_says_what_a_dpo_runs_evaluation_measures(home, browser):
    """An English page (no language change at load) never read the chosen run: the intro named ROUGE and
    BLEU for a DPO run, its summary was empty and its empty table had ROUGE columns."""
    store = Services.create(home).store
    run_dir = home / "runs" / "dpo-made-here"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("method: dpo\n")
    job = store.create(kind="train", name="pairs", run_dir=str(run_dir))
    for state in (J.STARTING, J.RUNNING, J.SUCCEEDED):
        store.transition(job.id, state)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    try:
        with live_server(home) as server:
            page = ctx.new_page()
            open_app(page, server.url)
            tab(page, "Evaluate")
            expect(page.locator("#ev-intro")).to_have_text(tr("ev.intro_pref", "en"), timeout=30_000)
            expect(page.locator("#ev-summary")).to_have_text(tr("ev.none_yet", "en"))
            expect(page.locator("#ev-table")).to_contain_text(tr("ev.col.chosen", "en"))
            shot(page, "evaluate-dpo-intro")
    finally:
        ctx.close()
