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
from tests.webui.conftest import live_server, open_app, run_evaluation, shot, tab
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


def test_the_preference_journey_trains_evaluates_and_chats(server, page, tmp_path):
    """Template preference-keeper -> its pairs side by side -> Method dpo -> train (the margin and
    accuracy plots fill) -> evaluate (preference accuracy before and after) -> chat with the result.
    Real training on the tiny model; nothing asserts the model's words."""
    from tests.conftest import REPO
    from tests.webui.test_browser import LOSS_POINTS, upload

    pairs = tmp_path / "keeper-pairs.jsonl"
    pairs.write_bytes((REPO / "presets/templates/data/preference-keeper.jsonl").read_bytes())
    open_app(page, server.url)
    page.locator("#tpl-preference-keeper").click()
    expect(page.locator("#tpl-chosen")).to_contain_text("preference-keeper")

    tab(page, "Dataset")
    upload(page, pairs)
    expect(page.locator("#ds-summary")).to_contain_text("preference", timeout=60_000)
    expect(page.locator("#ds-pair-chosen").get_by_text("learned").first).to_be_visible(timeout=120_000)
    expect(page.locator("#ds-pair-rejected")).not_to_be_empty()
    shot(page, "journey-preference-dataset")

    tab(page, "Hyperparameters")
    expect(page.locator("#cfg-method input")).to_have_value(re.compile("dpo"))
    expect(page.locator("#hp-problems")).to_contain_text("valid")

    tab(page, "Train")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#train-message")).to_contain_text("Started job", timeout=30_000)
    job_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{4,6}", page.locator("#train-message").inner_text()).group(0)
    expect(page.locator("#train-status")).to_contain_text("Succeeded", timeout=600_000)
    expect(page.locator(LOSS_POINTS).first).to_be_attached()
    for plot in ("#train-margin-plot", "#train-accuracy-plot"):
        expect(page.locator(f'{plot} [aria-roledescription="point"]').first).to_be_attached(timeout=60_000)
    shot(page, "journey-preference-train")

    run_evaluation(page, job_id, 6)
    expect(page.locator("#ev-summary")).to_contain_text("Preference accuracy")
    expect(page.locator("#ev-table")).to_contain_text("Rejected answer")
    shot(page, "journey-preference-evaluate")
    pref = json.loads((server.home / "runs" / job_id / "eval.json").read_text())["preference"]
    assert pref["pairs"] > 0 and pref["tuned_accuracy"] > pref["base_accuracy"], pref

    tab(page, "Chat")
    expect(page.locator("#chat-adapter input")).to_have_value(re.compile(job_id))
    page.locator("#chat-input textarea").fill("How do I light the copper furnace?")
    page.locator("#chat-input textarea").press("Enter")
    bot = page.locator("#chat-bot [data-testid='bot']").last
    expect(bot).not_to_contain_text("Loading the model", timeout=300_000)
    expect(bot).not_to_contain_text("Writing the answer", timeout=300_000)  # the status, until the words come
    expect(bot).to_contain_text(re.compile(r"\S"), timeout=60_000)
    shot(page, "journey-preference-chat")
