"""The newcomer's whole journey in Chromium on the demo model, with real training: template ->
data (a good file, then a broken one) -> train -> reload -> evaluate -> export -> chat."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import REPO
from tests.webui.conftest import open_app, run_evaluation, shot, tab
from tests.webui.test_browser import LOSS_POINTS, upload


def journey_dataset(page, tmp_path) -> None:
    """The Dataset tab: the template's sample file (checked when the template was chosen), a good file, a
    broken one (its problem shown, dropped by cleaning), the good one again."""
    sample = (REPO / "presets/templates/data/demo.jsonl").read_text().splitlines()
    good = tmp_path / "furnaces.jsonl"
    good.write_text("\n".join(sample[:-1]) + "\n")  # not the sample's bytes: the same bytes are the sample's dataset
    broken = tmp_path / "broken.jsonl"
    lines = good.read_text().splitlines()
    broken.write_text("\n".join(lines[:6] + ['{"messages": [{"role": "user", "content": "half a line'] + lines[6:10]) + "\n")

    tab(page, "Dataset")
    expect(page.locator("#ds-summary")).to_contain_text("demo.jsonl", timeout=60_000)  # the template's sample
    expect(page.locator("#ds-summary")).to_contain_text("rows: 124")
    upload(page, good)
    expect(page.locator("#ds-summary")).to_contain_text("rows: 123", timeout=60_000)  # its row count
    expect(page.locator("#ds-upload")).not_to_contain_text("furnaces")  # emptied: it is one of "Your datasets" now
    expect(page.locator("#ds-rendered")).to_contain_text("furnace", timeout=120_000)  # the example as trained
    upload(page, broken)
    problems = page.locator("#ds-problems")
    expect(problems).to_contain_text("malformed JSON", timeout=60_000)
    expect(problems.get_by_role("gridcell", name="7", exact=True)).to_be_visible()  # the broken line
    page.get_by_role("button", name="Drop rows with problems").click()
    expect(page.locator("#ds-clean-message")).to_contain_text("✓", timeout=60_000)
    expect(page.locator("#ds-summary")).to_contain_text("cleaned ×1")
    shot(page, "tab-dataset-problems")
    upload(page, good)  # the same bytes again: the same dataset, as it was
    expect(page.locator("#ds-summary")).to_contain_text("rows: 123", timeout=60_000)
    expect(page.locator("#ds-summary")).to_contain_text("furnaces.jsonl")
    shot(page, "tab-dataset")


def journey_train(page, server) -> str:
    """Hyperparameters (valid, the shell command), then Train to the end, and the job still there after a reload."""
    tab(page, "Hyperparameters")
    expect(page.locator("#hp-problems")).to_contain_text("valid")
    page.locator("#hp-show-command").click()
    expect(page.locator("#hp-command textarea")).to_have_value(re.compile(r"^python app\.py train .+\.yaml"))
    shot(page, "tab-hyperparameters")

    tab(page, "Train")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#train-message")).to_contain_text("Started job", timeout=30_000)
    job_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{4,6}", page.locator("#train-message").inner_text()).group(0)
    expect(page.locator(LOSS_POINTS).first).to_be_attached(timeout=300_000)
    expect(page.locator("#train-status")).to_contain_text("Succeeded", timeout=600_000)
    shot(page, "tab-train")
    page.reload()
    open_app(page, server.url)
    tab(page, "Train")
    expect(page.locator("#train-status")).to_contain_text(job_id)
    expect(page.locator(LOSS_POINTS).first).to_be_attached()
    return job_id


def journey_after_training(page, job_id: str) -> None:
    """Evaluate, Export (merge, GGUF and Ollama) and Chat on the job just trained."""
    run_evaluation(page, job_id, 8)
    expect(page.locator("#ev-summary")).to_contain_text("ROUGE-L")
    expect(page.locator("#ev-table")).to_contain_text("Fine-tuned")
    expect(page.locator("#ev-csv")).to_be_visible()
    shot(page, "tab-evaluate")

    tab(page, "Export")
    expect(page.locator("#ex-plan")).to_contain_text("free")  # expected size and time, and the free disk space
    page.locator("#ex-formats").get_by_label("GGUF Q4_K_M (suggested: small, good quality)").check()
    page.locator("#ex-formats").get_by_label("Ollama Modelfile").check()
    expect(page.locator("#ex-plan")).to_contain_text("GGUF Q4_K_M")
    page.get_by_role("button", name="Merge & export").click()
    expect(page.locator("#ex-status")).to_contain_text("Succeeded", timeout=600_000)
    expect(page.locator("#ex-result")).to_contain_text("exports")
    expect(page.locator("#ex-result")).to_contain_text("✓ q4_k_m")
    expect(page.locator("#ex-result")).to_contain_text("✓ ollama")
    shot(page, "tab-export")

    tab(page, "Chat")
    expect(page.locator("#chat-adapter input")).to_have_value(re.compile(job_id))
    page.locator("#chat-input textarea").fill("What fire does the copper furnace use?")
    page.locator("#chat-input textarea").press("Enter")
    bot = page.locator("#chat-bot [data-testid='bot']").last
    expect(bot).to_contain_text(re.compile(r"\w{3,}"), timeout=60_000)
    expect(bot).not_to_contain_text("Loading the model", timeout=300_000)
    expect(bot).not_to_contain_text("Writing the answer", timeout=300_000)  # the status, until the words come
    expect(bot).to_contain_text(re.compile(r"\w{3,}"))
    shot(page, "tab-chat")


@pytest.mark.slow
def test_the_newcomer_journey_on_the_demo_model(server, page, tmp_path):
    """Template -> data (good file, then a broken one) -> train -> reload -> evaluate -> export -> chat."""
    open_app(page, server.url)
    shot(page, "tab-templates")
    page.locator("#tpl-demo").click()
    expect(page.locator("#tpl-chosen")).to_contain_text("demo")
    journey_dataset(page, tmp_path)
    job_id = journey_train(page, server)
    journey_after_training(page, job_id)
