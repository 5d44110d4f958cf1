"""What a browser walk in Japanese and Korean found said wrongly, checked without a browser."""
import re

from core import jobs
from webui.i18n import CODES, tr
from webui.tabs import evaluate_tab


def test_run_evaluation_without_a_job_says_to_pick_one_once(gui):
    """The summary says "pick a finished job first"; the button's line said it again beneath (a walk in Korean)."""
    _, said, _ = evaluate_tab.start_eval(gui, "ko", None, 5, 128)
    summary = evaluate_tab.show_results(gui, "ko", None)[0]
    assert summary == tr("ev.no_run", "ko") and tr("ev.no_run", "ko") not in said


def test_the_demo_port_box_explains_the_0_it_shows():
    """The box shows 0 (Gradio draws an empty number box as 0) beside "Empty: a free one" (a walk in Korean)."""
    assert all(tr("chat.demo_port_help", code).startswith("0") for code in CODES)


def test_the_example_job_id_in_continue_from_looks_like_a_job_id():
    """'e.g. j-20261202-...': job ids have no 'j-' (20261204-210143-46a8d7, a walk in Korean)."""
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", jobs.new_id())
    for code in CODES:
        assert re.search(r"(?<![\w-])\d{8}-\.\.\.", tr("help.start_adapter", code)), code


def test_a_refused_first_row_of_the_grid_reaches_the_page(services):
    """Gradio's page shows no error box for an unqueued event: "-5" typed as the grid's first row got a
    500 with the refusal in Korean, and the page said nothing (a walk in Korean). The grid stays queued."""
    from webui.app import build_ui
    from webui.serving import _inner
    from webui.tabs import dataset_grid
    fns = [fn for fn in build_ui(services).fns.values() if fn.fn is not None and _inner(fn.fn) is dataset_grid.grid]
    assert fns and all(fn.queue is not False for fn in fns)


def test_the_error_box_is_headed_and_closed_in_the_pages_language():
    """Gradio heads its error box "Error" whatever title the handler sends (a walk in Korean), and names its
    close button "Close", for screen readers too: the page's script puts each language's words there."""
    import json

    from webui.page_script import SET_LANGUAGE_JS
    words = json.loads(re.search(r"window.danluBoxWords = (\{.*?\}\});", SET_LANGUAGE_JS).group(1))
    assert {code: (w["title"], w["close"]) for code, w in words.items()} == {
        code: (tr("app.error_title", code), tr("app.close", code)) for code in CODES}
    assert (words["ko"]["title"], words["ko"]["close"]) == ("오류", "닫기")


def test_spanish_counts_agree_with_their_verb():
    """'se quitaron 1 fila con problemas', 'el registro tiene 1 campos' (the Spanish walk's cleaning and CSV
    problems): the verb and the noun follow the count as the English does."""
    from core.messages import Msg
    from webui.i18n import say
    assert say(Msg("clean.drop_invalid", n=1, total=26), "es") == "se quitó 1 fila con problemas (de 26)"
    assert say(Msg("clean.drop_invalid", n=2, total=26), "es") == "se quitaron 2 filas con problemas (de 26)"
    assert say(Msg("clean.dedupe", n=1, total=25), "es") == "se eliminó 1 fila duplicada (de 25)"
    assert say(Msg("read.ragged", n=1, width=2), "es") == "el registro tiene 1 campo y el encabezado 2"


def test_the_spanish_time_left_agrees_with_one_minute():
    """'tiempo restante: unos 1 min' (the Spanish walk): 'unos' wants a plural; 'aprox.' reads with any count."""
    from webui.jobview import status_markdown
    st = dict(state="running", id="j", kind="train", step=10, total_steps=60, eta_s=90.0, phase="training")
    assert "tiempo restante: aprox. 1 min" in status_markdown(st, "es")


def test_the_spanish_disk_messages_agree_with_one_gigabyte():
    """'el próximo punto de control necesita unos 1 GB', 'necesita unos 1 GB de disco ... y hay 858 MB libres':
    'unos' wants a plural; 'aprox.' reads with any size, and 'libres: 1 GB' with one."""
    from core.messages import Msg, size_msg
    from webui.i18n import say
    low = say(Msg("fail.low_disk", free=size_msg(900_000_000), path="/w/runs/x", need=size_msg(1 << 30)), "es")
    export = say(Msg("export.disk", free=size_msg(1 << 30), need=size_msg(1 << 30)), "es")
    assert low == "Espacio libre en /w/runs/x: solo 858 MB; el próximo punto de control necesita aprox. 1 GB."
    assert export == "necesita aprox. 1 GB de disco en su punto máximo; libres: 1 GB"


def test_a_job_waiting_on_a_computer_without_gpus_does_not_wait_for_gpus():
    """A second demo run on a laptop waited with 'GPU が空くのを待っています' beside 'CPU（このコンピューターに
    GPU はありません）' (a walk in Japanese): a CPU job waits for the job before it to finish."""
    from webui.jobview import status_markdown
    cpu = dict(state="queued", id="j", kind="train", gpus=["cpu"])
    gpu = dict(state="queued", id="j", kind="train", gpus=[0, 1])
    for code in CODES:
        assert tr("st.queued_cpu", code) in status_markdown(cpu, code) and "GPU" not in status_markdown(cpu, code)
        assert tr("st.queued", code) in status_markdown(gpu, code)


def test_exact_match_is_said_in_the_pages_language(gui):
    """The Korean table of answers said 'yes' and 'no' in its exact-match columns (a walk in Korean)."""
    row = ["q", "a", "b", "a", 0.0, 1.0, 0.0, 1.0, "no", "yes"]
    frame = evaluate_tab.results_frame([row], "ko")
    assert list(frame.iloc[0])[-2:] == [tr("ev.exact_no", "ko"), tr("ev.exact_yes", "ko")] == ["불일치", "일치"]
    assert list(frame.iloc[0])[:4] == ["q", "a", "b", "a"]  # answers that read "yes" stay as they are


def test_a_korean_particle_agrees_with_the_word_before_it():
    """'에폭 수은(는) 1000.0 이하여야' read 수은, mercury (a walk in Korean): after a Hangul word the particle
    follows its last syllable; after a number or Latin letters both forms stay."""
    from core.config_io import out_of_bounds
    from webui.i18n import say
    said = {name: say(out_of_bounds(name, "max", "1e999").msg, "ko") for name in ("num_epochs", "learning_rate")}
    assert said["num_epochs"].startswith("에폭 수는 ") and said["learning_rate"].startswith("학습률은 ")
    assert tr("config.max", "ko", label="LoRA dropout", n=1, value=2).startswith("LoRA dropout은(는) ")


def test_japanese_and_korean_say_token_in_their_own_word():
    """'token 数' on the Japanese page beside 'トークン' a few lines on, '토큰' and 'token' alike in Korean
    (a walk in Japanese and Korean): each says トークン / 토큰 everywhere; keys and `code` stay."""
    from core import presets
    from webui.i18n import CATALOGS
    word = re.compile(r"(?<![A-Za-z_{])token(?![A-Za-z_}])")
    for code in ("ja", "ko"):
        texts = list(CATALOGS[code].values())
        texts += [t for p in presets.all_presets() for t in ((p.data.get("translations") or {}).get(code) or {}).values()]
        left = [t for t in texts if isinstance(t, str) and word.search(re.sub(r"`[^`]*`", "", t))]
        assert not left, (code, left[:3])


def test_opening_evaluate_or_export_picks_a_run_finished_since_and_keeps_a_choice_otherwise(gui):
    """The pickers kept the run that was newest when the server started: a Korean newcomer trained a new
    run and Evaluate and Export showed the older one (a walk in Korean)."""
    from webui.jobview import refresh_new_runs
    from tests.webui.test_preference_page import finished_job
    old, _ = finished_job(gui, "old")
    picker, _, seen = refresh_new_runs(gui, "ko", old.id, "", None)  # the page just opened
    assert picker["value"] == old.id and seen == old.id
    new, _ = finished_job(gui, "new")
    picker, _, seen = refresh_new_runs(gui, "ko", old.id, "", seen)  # trained meanwhile: the new run
    assert picker["value"] == new.id and seen == new.id
    picker, _, seen = refresh_new_runs(gui, "ko", old.id, "", seen)  # chosen by the person since: kept
    assert picker["value"] == old.id and seen == new.id


def test_opening_chat_talks_to_a_run_finished_since(gui):
    """Chat kept the run newest when the server started: after training, a Korean newcomer talked to the
    older run (a walk in Korean). A run finished since the tab last listed runs is chosen; else the choice stays."""
    from tests.webui.test_preference_page import finished_job
    from webui.tabs import chat_tab
    old, _ = finished_job(gui, "old")
    *_, seen = chat_tab.refresh_on_open(gui, "ko", None, old.id, "", "")
    new, _ = finished_job(gui, "new")
    _, adapter, _, seen = chat_tab.refresh_on_open(gui, "ko", None, old.id, "", seen)
    assert adapter["value"] == new.id and seen == new.id
    _, adapter, _, seen = chat_tab.refresh_on_open(gui, "ko", None, old.id, "", seen)
    assert adapter["value"] == old.id
