"""The GUI in a real browser (Debian's chromium via Playwright) against `python app.py --port P`.

The fake-recipe tests run tests/webui/fake_recipe.py under the real launcher, supervisor and
torchrun (DANLU_GUI_TEST_TRAIN_MODULE), so they check the GUI and the job system, not training.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from core import jobs as J
from core.messages import Msg
from core.services import Services
from tests.conftest import REPO
from tests.webui.conftest import FAKE_RECIPE, live_server, open_app, shot, tab
from webui.i18n import say, tr

pytestmark = pytest.mark.browser

LOSS_POINTS = '#train-loss-plot [aria-roledescription="point"]'


def upload(page, path) -> None:
    """Drop a file on the Dataset tab's upload box (clearing the file shown there first)."""
    clear = page.locator("#ds-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#ds-upload input[type=file]").set_input_files(str(path))


def start_demo_training(page) -> str:
    """Templates -> demo -> Train -> Start training; returns the new job id."""
    page.locator("#tpl-demo").click()
    expect(page.locator("#tpl-chosen")).to_contain_text("demo")
    tab(page, "Train")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#train-message")).to_contain_text("Started job", timeout=30_000)
    return re.search(r"\d{8}-\d{6}-[0-9a-f]{4,6}", page.locator("#train-message").inner_text()).group(0)


@contextmanager
def fake_job_server(home: Path, browser, size=(1280, 900), timeout_ms=60_000, **fake):
    """(browser context, server): the app served with the fake recipe (DANLU_FAKE_<KEY>=value for each
    keyword); the context is closed afterwards."""
    env = {"DANLU_GUI_TEST_TRAIN_MODULE": FAKE_RECIPE, **{f"DANLU_FAKE_{k.upper()}": str(v) for k, v in fake.items()}}
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    ctx.set_default_timeout(timeout_ms)
    try:
        with live_server(home, env=env) as server:
            yield ctx, server
    finally:
        ctx.close()


@contextmanager
def fake_job_page(home: Path, browser, **fake):
    """A page on the app, served with the fake recipe (see fake_job_server)."""
    with fake_job_server(home, browser, **fake) as (ctx, server):
        page = ctx.new_page()
        open_app(page, server.url)
        yield page


def metrics(home: Path, job_id: str) -> list[dict]:
    path = home / "runs" / job_id / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_switching_to_chinese_changes_tabs_and_buttons_and_survives_a_reload(server, page):
    open_app(page, server.url)
    expect(page.get_by_role("tab", name="Templates")).to_be_visible()
    page.get_by_label("简体中文").check()
    for name in ("模板", "数据集", "审阅", "超参数", "训练", "评估", "导出", "对话"):
        expect(page.get_by_role("tab", name=name, exact=True)).to_be_visible()
    expect(page.locator("#tpl-demo")).to_have_text("使用此模板")
    expect(page.locator("#tpl-card-demo")).to_contain_text("耗时")
    tab(page, "训练")
    expect(page.get_by_role("button", name="开始训练")).to_be_visible()
    expect(page.get_by_role("button", name="停止")).to_be_visible()
    # what the server composed (status line, job table headers) is rendered again in Chinese too
    expect(page.locator("#train-status")).to_contain_text("还没有任务")
    expect(page.locator("#train-jobs")).to_contain_text("状态")
    shot(page, "zh-train")
    tab(page, "超参数")
    expect(page.get_by_text("LoRA 秩", exact=True)).to_be_visible()
    shot(page, "zh-hyperparameters")
    page.reload()
    expect(page.get_by_role("tab", name="训练", exact=True)).to_be_visible(timeout=60_000)
    tab(page, "训练")
    expect(page.locator("#train-status")).to_contain_text("还没有任务")
    page.get_by_label("English").check()
    expect(page.get_by_role("tab", name="Train", exact=True)).to_be_visible()
    expect(page.locator("#tpl-demo")).to_have_text("Use this template")


def test_a_job_survives_page_reload_and_a_killed_server(home, browser):
    env = {"DANLU_GUI_TEST_TRAIN_MODULE": FAKE_RECIPE, "DANLU_FAKE_STEPS": "150", "DANLU_FAKE_STEP_S": "0.1"}
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(30_000)
    page = ctx.new_page()
    try:
        with live_server(home, env=env, keep_jobs=True) as server:
            open_app(page, server.url)
            job_id = start_demo_training(page)
            expect(page.locator(LOSS_POINTS).first).to_be_attached(timeout=120_000)
            page.reload()
            open_app(page, server.url)
            tab(page, "Train")
            expect(page.locator("#train-status")).to_contain_text(job_id)
            expect(page.locator(LOSS_POINTS).first).to_be_attached()
            # the GUI dies mid-training without a chance to clean up (SIGKILL to its process group,
            # as a crash or the out-of-memory killer would); the job runs in its own session
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=30)
        # the server is gone; the job is not
        assert Services.create(home).store.get(job_id).state in J.ACTIVE | {J.SUCCEEDED}
        with live_server(home, env=env) as server:
            open_app(page, server.url)
            tab(page, "Train")
            expect(page.locator("#train-status")).to_contain_text("Succeeded", timeout=90_000)
            expect(page.locator("#train-status")).to_contain_text(job_id)
            expect(page.locator("#train-jobs")).to_contain_text(job_id)
            # the plot draws after the status text shows (Vega renders on its own): wait for its 100th point,
            # a count taken at once found 0 on a loaded machine
            expect(page.locator(LOSS_POINTS).nth(99)).to_be_attached()
            shot(page, "reattach-after-restart")
    finally:
        ctx.close()
    assert len(metrics(home, job_id)) == 150


def test_a_failed_job_says_why_and_what_to_do_above_the_log(home, browser):
    with fake_job_page(home, browser, steps=50, fail_at=12) as page:
        start_demo_training(page)
        expect(page.locator("#train-status")).to_contain_text("Failed", timeout=120_000)
        failure = page.locator("#train-failure")
        expect(failure).to_contain_text("the loss went out of bounds")  # the reason in words, not its code
        expect(failure).to_contain_text("NaN")
        expect(failure).to_contain_text("What to do: Lower the learning rate")
        # above the log and the plots, where it is read first
        assert failure.bounding_box()["y"] < page.locator("#train-log").bounding_box()["y"]
        expect(page.get_by_role("button", name="Resume")).to_be_enabled()
        shot(page, "failed-job")


def test_twenty_browser_tabs_opening_and_closing_do_not_slow_or_stop_a_job(home, browser):
    """20 tabs open at once (five of them on the Train tab, polling the job), then all closed: the job
    keeps its pace throughout; afterwards Stop ends it as Cancelled (not Failed)."""
    with fake_job_server(home, browser, size=(1100, 800), timeout_ms=120_000, steps=100000, step_s=0.1) as (ctx, server):
        main = ctx.new_page()
        open_app(main, server.url)
        job_id = start_demo_training(main)
        expect(main.locator(LOSS_POINTS).first).to_be_attached(timeout=120_000)
        pages = [ctx.new_page() for _ in range(20)]
        for p in pages:
            p.goto(server.url, wait_until="commit")
        for p in pages:
            p.locator("#tpl-demo").wait_for(state="visible")
        for p in pages[:5]:  # five of them watch the job (the others' polling is off on other tabs)
            tab(p, "Train")
        for p in pages[:5]:
            expect(p.locator("#train-status")).to_contain_text(job_id)
        shot(pages[0], "twenty-tabs-train")
        for p in pages:
            p.close()
        before = len(metrics(home, job_id))
        time.sleep(3)
        assert len(metrics(home, job_id)) > before, "the job stopped when the tabs closed"
        main.get_by_role("button", name="Stop").click()
        expect(main.locator("#train-status")).to_contain_text("Cancelled", timeout=60_000)
        expect(main.locator("#train-failure")).to_contain_text("Cancelled")
        expect(main.get_by_role("button", name="Resume")).to_be_enabled()
        shot(main, "stopped-job")
    recs = metrics(home, job_id)
    assert [r["step"] for r in recs] == list(range(1, len(recs) + 1))
    gaps = [b["wall"] - a["wall"] for a, b in zip(recs, recs[1:])]
    # a step takes 0.1 s; a job held back by the server (a full pipe, a blocked write) would stall for
    # much longer. 5 s leaves room for other tests sharing the two cores.
    assert max(gaps) < 5.0, f"the job stalled for {max(gaps):.1f} s while tabs opened and closed"
    assert Services.create(home).store.get(job_id).state == J.CANCELLED


def test_the_train_tab_polls_only_while_it_is_open(home, browser):
    """Opening the Train tab starts its timer in the page (no server event), leaving it stops it."""
    with fake_job_page(home, browser, steps=400, step_s=0.1) as page:
        polls = []
        page.on("request", lambda r: "run/predict" in r.url and polls.append(time.time()))
        start_demo_training(page)  # Start also switches the timer on; leave and come back below
        expect(page.locator("#train-status")).to_contain_text("Running", timeout=120_000)
        tab(page, "Templates")
        page.wait_for_timeout(1500)  # a tick already on its way may still land (waiting in Playwright
        polls.clear()                # lets it record requests; time.sleep would not)
        page.wait_for_timeout(3000)
        assert polls == [], "the Train tab's timer kept polling from another tab"
        tab(page, "Train")
        first = page.locator("#train-status").inner_text()
        page.wait_for_timeout(3000)
        assert len(polls) >= 2, "opening the Train tab did not start its timer"
        expect(page.locator("#train-status")).not_to_have_text(first)  # and what it shows moves on


def orange_pixels(page) -> int:
    """Pixels of the training-loss colour (#ea580c) drawn in the loss plot."""
    img = Image.open(io.BytesIO(page.locator("#train-loss-plot").screenshot())).convert("RGB")
    return sum(1 for r, g, b in img.getdata() if abs(r - 0xEA) < 40 and abs(g - 0x58) < 40 and b < 60)


def axis_title_cut_off(page, elem_id: str, title: str) -> float:
    """How many pixels of the axis title `title` the plot's box hides below its bottom edge."""
    return page.evaluate("""([id, title]) => { const box = document.getElementById(id);
        const t = [...box.querySelectorAll('svg text')].find(t => t.textContent === title);
        return t ? t.getBoundingClientRect().bottom - box.getBoundingClientRect().bottom : 1e9; }""", [elem_id, title])


def test_the_loss_plot_keeps_its_lines_across_a_language_switch(home, browser):
    """The plot fixes its colours from the series names it first gets; the names must not change
    with the language, or the lines vanish (their points stay in the page, undrawn)."""
    with fake_job_page(home, browser, steps=40, step_s=0.05) as page:
        start_demo_training(page)
        expect(page.locator("#train-status")).to_contain_text("Succeeded", timeout=120_000)
        expect(page.locator(LOSS_POINTS).first).to_be_attached()
        page.wait_for_timeout(1000)
        drawn = orange_pixels(page)
        assert drawn > 100, f"the training line is not drawn before the switch ({drawn} pixels)"
        # its x-axis title inside the box: Gradio drew the plot the box's height below the label (a walk)
        assert axis_title_cut_off(page, "train-loss-plot", "step") <= 0
        page.get_by_label("简体中文").check()
        expect(page.locator("#train-status")).to_contain_text("已成功")
        # the line Start wrote is said again in the new language, not left in English
        expect(page.locator("#train-message")).to_contain_text("已开始任务")
        expect(page.locator("#train-message")).not_to_contain_text("Started job")
        # and so is another tab's: the note the template's button wrote (the Templates tab, not shown now)
        expect(page.locator("#tpl-chosen")).to_contain_text("已选择模板")
        expect(page.locator("#tpl-chosen")).not_to_contain_text("Next: upload")
        page.wait_for_timeout(2000)  # the re-rendered plot has arrived by now
        after = orange_pixels(page)
        shot(page, "zh-train-after-a-run")
        assert after > drawn // 2, f"the training line vanished after the switch ({drawn} -> {after} pixels)"


def test_settings_typed_just_before_start_are_checked_as_typed_and_used(home, browser):
    """The events read the settings from one box the page keeps current (webui/fields.py): a value
    typed and at once followed by Start is the one the job runs with, and a bad value is explained
    while typing."""
    with fake_job_page(home, browser, steps=5, step_s=0.05) as page:
        page.locator("#tpl-custom-model textarea").fill("someone/some-model")  # the free model field
        page.locator("#tpl-custom-model textarea").press("Enter")
        expect(page.locator("#tpl-model-info")).to_contain_text("someone/some-model")
        page.locator("#tpl-demo").click()
        expect(page.locator("#tpl-chosen")).to_contain_text("demo")
        expect(page.locator("#tpl-model-info")).to_contain_text("danlu-tiny")  # said by the template's answer
        tab(page, "Hyperparameters")
        rank = page.locator("#cfg-lora_rank input")
        rank.fill("0")
        expect(page.locator("#hp-problems")).to_contain_text("lora_rank")
        rank.fill("24")
        expect(page.locator("#hp-problems")).to_contain_text("valid")
        rank.fill("12")
        tab(page, "Train")
        page.get_by_role("button", name="Start training").click()
        expect(page.locator("#train-message")).to_contain_text("Started job", timeout=30_000)
        job_id = re.search(r"\d{8}-\d{6}-[0-9a-f]{4,6}", page.locator("#train-message").inner_text()).group(0)
        saved = (home / "runs" / job_id / "config.yaml").read_text()
        assert re.search(r"^lora_rank: 12$", saved, re.M), saved
        assert "danlu-tiny" in saved  # and what the template filled in

        # Load config: the file's own notes stay beside the button; the values go through the check
        loaded = home / "loaded.yaml"
        loaded.write_text(saved.replace("lora_rank: 12", "lora_rank: 0") + "lora_rnak: 8\n")
        tab(page, "Hyperparameters")
        with page.expect_file_chooser() as chooser:
            page.locator("#hp-load").click()
        chooser.value.set_files(str(loaded))
        expect(page.locator("#cfg-lora_rank input")).to_have_value("0")
        expect(page.locator("#hp-loaded")).to_contain_text("lora_rnak")
        expect(page.locator("#hp-problems")).to_contain_text("lora_rank")
        page.wait_for_timeout(1000)
        expect(page.locator("#hp-loaded")).to_contain_text("lora_rnak")  # not overwritten by the check


def test_load_config_naming_a_file_outside_the_allowed_folders_is_refused_in_both_languages(server, page, tmp_path):
    """Hyperparameters -> Load config with `dataset: /etc/passwd` (issue 15): nothing is loaded, the note
    says which folders the page may use and how to allow one, and Start creates no job."""
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text("dataset: /etc/passwd\nbase_model: builtin:danlu-tiny\nlora_rank: 7\n")
    open_app(page, server.url)
    page.locator("#tpl-demo").click()
    expect(page.locator("#tpl-chosen")).to_contain_text("demo")
    tab(page, "Hyperparameters")
    for lang, words in (("en", ["outside the workspace", "settings.yaml", "allowed_roots"]),
                        ("zh-CN", ["不在工作区", "网页只能使用这些文件夹中的文件", "settings.yaml", "allowed_roots"])):
        if lang == "zh-CN":
            page.get_by_label("简体中文").check()
            tab(page, "超参数")
        with page.expect_file_chooser() as chooser:
            page.locator("#hp-load").click()
        chooser.value.set_files(str(hostile))
        for w in words:
            expect(page.locator("#hp-loaded")).to_contain_text(w)
        expect(page.locator("#cfg-lora_rank input")).not_to_have_value("7")  # nothing of the file was taken
        assert "root:x" not in page.content()
        shot(page, f"load-config-refused-{lang}")
    tab(page, "训练")
    page.get_by_role("button", name="开始训练").click()
    expect(page.locator("#train-message")).to_contain_text("开始", timeout=30_000)  # the template's own data trains
    job = Services.create(server.home).store.list()[0]
    assert "/etc/passwd" not in Path(job.config_path).read_text()


# what each new language must show: (radio label, tab names in the page's order, "Use this template", Start,
# a settings check message for lora_rank 0, a dataset problem for a cut-off JSON line, its kind in "By type",
# the Review tab's title and a kind of sensitive data, the suggested GGUF format on the Export tab)
NEW_LANGUAGES = [
    ("日本語", ("テンプレート", "データセット", "レビュー", "ハイパーパラメータ", "学習", "評価", "エクスポート", "チャット"),
     "このテンプレートを使う", "学習を開始", "LoRA ランクは 1 以上でなければなりません", "列目の JSON が誤っています",
     "JSON の誤り", ("行をレビュー", "メールアドレス"), "GGUF Q4_K_M（おすすめ", "ja"),
    ("Español", ("Plantillas", "Datos", "Revisar", "Hiperparámetros", "Entrenar", "Evaluar", "Exportar", "Chat"),
     "Usar esta plantilla", "Iniciar entrenamiento", "Rango de LoRA debe ser al menos 1", "JSON mal formado en la columna",
     "JSON mal formado", ("Revisa las filas", "direcciones de correo"), "GGUF Q4_K_M (recomendado", "es"),
    ("한국어", ("템플릿", "데이터셋", "검토", "하이퍼파라미터", "학습", "평가", "내보내기", "채팅"),
     "이 템플릿 사용", "학습 시작", "LoRA 랭크는 1 이상이어야 합니다", "번째 열의 JSON이 잘못되었습니다",
     "잘못된 JSON", ("행 검토", "이메일 주소"), "GGUF Q4_K_M(추천", "ko"),
]


def test_the_page_speaks_japanese_spanish_and_korean(server, page, tmp_path):
    """Each new language through the page: tabs, buttons, the settings check and a dataset problem
    (both core messages, rendered from their codes), with screenshots to look at (CJK glyphs, widths)."""
    demo = (REPO / "presets/templates/data/demo.jsonl").read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(demo[:3] + ['{"messages": [{"role": "user", "content": "half'] + demo[3:6]) + "\n")
    open_app(page, server.url)
    page.locator("#tpl-demo").click()
    expect(page.locator("#tpl-chosen")).to_contain_text("demo")
    tab(page, "Dataset")
    upload(page, broken)  # checked once; a language switch renders the same report again in the new language
    expect(page.locator("#ds-problems")).to_contain_text("malformed JSON at column", timeout=60_000)
    expect(page.locator("#ds-lengths")).to_contain_text("tokens per row: min", timeout=60_000)  # measured once, said again
    tab(page, "Hyperparameters")
    rank = page.locator("#cfg-lora_rank input")
    rank.fill("0")
    rank.press("Tab")
    page.locator("#hp-show-command").click()  # its note (what to fix first) is said again too
    expect(page.locator("#hp-command textarea")).to_have_value(re.compile(r"^# Fix these settings first:"), timeout=30_000)
    rank.fill("16")
    rank.press("Tab")
    for label, tabs, use, start, rank_problem, data_problem, kind, review, gguf, code in NEW_LANGUAGES:
        page.get_by_label(label).check()
        for name in tabs:
            expect(page.get_by_role("tab", name=name, exact=True)).to_be_visible()
        expect(page.locator("#tpl-demo")).to_have_text(use)
        tab(page, tabs[0])
        lines_break_as_written(page, code)  # and the screenshot of the templates
        tab(page, tabs[3])
        expect(page.locator("#hp-command textarea")).to_have_value(re.compile("^# " + re.escape(tr("hp.fix_first", code))))
        rank.fill("0")
        rank.press("Tab")
        expect(page.locator("#hp-problems")).to_contain_text(rank_problem, timeout=30_000)
        shot(page, f"{code}-hyperparameters")
        rank.fill("16")
        rank.press("Tab")
        expect(page.locator("#hp-problems")).not_to_contain_text(rank_problem, timeout=30_000)
        tab(page, tabs[1])
        expect(page.locator("#ds-problems")).to_contain_text(data_problem, timeout=60_000)
        expect(page.locator("#ds-counts")).to_contain_text(kind)
        expect(page.locator("#ds-lengths")).to_contain_text(f"{tr('ds.tokens', code)}: {tr('ds.min', code)} ")
        # the picker's and the example's words are relabelled, not measured again; the dataset stays picked
        picker_shows_its_whole_line(page, code, f"^broken.jsonl · {tr('ds.original', code)} · ds-")
        expect(page.locator("#ds-rendered")).to_contain_text(tr("ds.trained", code))
        shot(page, f"{code}-dataset")
        tab(page, tabs[2])
        for words in review:  # the title (the page's words), the kinds (the tab's own handlers)
            expect(page.locator("#tab-review")).to_contain_text(words, timeout=30_000)
        expect(page.locator("#rv-hits")).to_contain_text(tr("rv.col.kind", code))  # the empty table's headers
        shot(page, f"{code}-review")
        tab(page, tabs[4])
        expect(page.get_by_role("button", name=start)).to_be_visible()
        shot(page, f"{code}-train")
        tab(page, tabs[6])
        expect(page.locator("#tab-export")).to_contain_text(gguf)
        shot(page, f"{code}-export")
        tab(page, tabs[0])
    page.get_by_label("English").check()
    expect(page.get_by_role("tab", name="Hyperparameters", exact=True)).to_be_visible()
    refused_after_a_switch(page, tmp_path)


def lines_break_as_written(page, code: str) -> None:
    """Korean breaks lines between words; a line broken inside one ("연\n단로에") read as two words."""
    breaks = page.locator("#tpl-cards p").first.evaluate("p => getComputedStyle(p).wordBreak")
    assert breaks == ("keep-all" if code == "ko" else "normal"), (code, breaks)
    shot(page, f"{code}-templates")


def picker_shows_its_whole_line(page, code: str, value: str) -> None:
    """The dataset picker's `value` (a pattern), and its whole line: its text box was 16 px for a 19.6 px line,
    so with Chinese, Japanese or Korean in it the bottom of the line was cut off, underscores too
    ("炼丹_zh.jsonl" read "炼丹 zh.jsonl"; the Chinese walk)."""
    expect(page.locator("#ds-picker input")).to_have_value(re.compile(value))
    box = page.locator("#ds-picker input").evaluate(
        "i => [i.getBoundingClientRect().height, parseFloat(getComputedStyle(i).lineHeight)]")
    assert code not in ("zh-CN", "ja", "ko") or box[0] + 0.5 >= box[1], (code, box)


def refused_after_a_switch(page, tmp_path) -> None:
    """A refused file stays said after a language switch, in the new language, not replaced by the
    summary of the dataset still selected (the check, the problems table and the summary are one answer)."""
    tab(page, "Dataset")
    photo = tmp_path / "photo.jsonl"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    upload(page, photo)
    expect(page.locator("#ds-summary")).to_contain_text("photo.jsonl cannot be used", timeout=60_000)
    expect(page.locator("#ds-upload")).not_to_contain_text("photo")  # emptied: it kept the last file ("photo" ".jsonl")
    page.get_by_label("한국어").check()
    expect(page.locator("#ds-problems")).to_contain_text(tr("ds.col.fix", "ko"), timeout=30_000)
    expect(page.locator("#ds-summary")).to_contain_text(say(Msg("error.source", source="photo.jsonl"), "ko"))
    expect(page.locator("#ds-summary")).not_to_contain_text("broken.jsonl")
    shot(page, "ko-dataset-refused")
    page.get_by_label("English").check()
    expect(page.locator("#ds-summary")).to_contain_text("photo.jsonl cannot be used", timeout=30_000)
