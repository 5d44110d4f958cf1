"""A finished preference run in the browser: the Train tab draws its reward-margin and preference-
accuracy plots, the Evaluate tab shows accuracy and margin before and after and the pair columns,
and the Hyperparameters tab offers Method in words. The run is written here (job record,
metrics.jsonl, eval.json) so nothing trains."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from core import jobs as J
from core.services import Services
from tests.webui.conftest import live_server, open_app, shot, tab
from tests.webui.test_preference_page import PREF_LINES, PREF_REPORT

pytestmark = pytest.mark.browser


def test_a_preference_run_shows_its_plots_and_its_evaluation(home, browser):
    store = Services.create(home).store
    run_dir = home / "runs" / "pref-made-here"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in PREF_LINES))
    (run_dir / "eval.json").write_text(json.dumps(PREF_REPORT))
    job = store.create(kind="train", name="pairs", run_dir=str(run_dir))
    for state in (J.STARTING, J.RUNNING, J.SUCCEEDED):
        store.transition(job.id, state)
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    ctx.set_default_timeout(60_000)
    try:
        with live_server(home) as server:
            page = ctx.new_page()
            open_app(page, server.url)
            tab(page, "Train")
            for plot in ("#train-margin-plot", "#train-accuracy-plot"):
                expect(page.locator(plot)).to_be_visible()
                expect(page.locator(f'{plot} [aria-roledescription="point"]').first).to_be_attached()
            shot(page, "train-preference-plots")
            tab(page, "Evaluate")
            expect(page.locator("#ev-run input")).to_have_value(re.compile(job.id))
            # the page renders the chosen run's results again in the new language (webui/app.py)
            page.get_by_label("简体中文").check()
            expect(page.locator("#ev-summary")).to_contain_text("偏好准确率")
            expect(page.locator("#ev-summary")).to_contain_text("88%")
            expect(page.locator("#ev-table")).to_contain_text("较好回答")
            shot(page, "zh-evaluate-preference")
            page.get_by_label("English").check()
            expect(page.locator("#ev-summary")).to_contain_text("Preference accuracy")
            for head in ("Chosen answer", "Rejected answer", "Margin tuned"):
                expect(page.locator("#ev-table")).to_contain_text(head)
            page.get_by_label("简体中文").check()
            tab(page, "超参数")
            page.locator("#hp-advanced").get_by_text("高级设置").first.click()
            expect(page.locator("#cfg-pref_beta")).to_be_hidden()  # sft: the pair strength does not apply
            page.locator("#cfg-method input").click()
            dpo = page.get_by_role("option", name="用较好/较差的回答对来教（dpo）")
            expect(dpo).to_be_visible()
            shot(page, "zh-method-choices")
            dpo.click()
            expect(page.locator("#cfg-pref_beta")).to_be_visible()
    finally:
        ctx.close()
