"""Small things the browser walks saw on the page: plot ticks, stray console errors."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.webui.test_browser import fake_job_page, start_demo_training

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
