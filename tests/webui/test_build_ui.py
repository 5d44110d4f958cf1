"""The whole Blocks app builds, with stable API names and without anything that limits open tabs."""
import gradio as gr

from webui.app import build_ui

NO_LABEL_NEEDED = (gr.Markdown, gr.HTML, gr.Button, gr.UploadButton, gr.DownloadButton, gr.Timer, gr.BrowserState)


def config(services):
    blocks = build_ui(services)
    return blocks, blocks.get_config_file()


def test_no_page_needs_a_heartbeat_stream(services):
    """A heartbeat (opened for any gr.State) holds one of the browser's six connections per host for
    as long as the page is open: with it, the seventh tab of the app never loads."""
    _, cfg = config(services)
    assert cfg["connect_heartbeat"] is False


def test_every_component_has_a_label(services):
    blocks, _ = config(services)
    unlabeled = [(type(b).__name__, getattr(b, "elem_id", None)) for b in blocks.blocks.values()
                 if isinstance(b, gr.components.Component) and not isinstance(b, NO_LABEL_NEEDED)
                 and not getattr(b, "label", None)]
    assert not unlabeled, unlabeled


def test_main_actions_have_stable_api_names(services):
    _, cfg = config(services)
    names = {d.get("api_name") for d in cfg["dependencies"]}
    assert {"start_training", "stop_job", "resume_job", "retry_job", "check_dataset", "show_command", "save_config",
            "load_config", "apply_recipe", "use_template_demo", "refresh_job"} <= names


def test_tabs_are_the_seven_named_in_the_brief_and_review(services):
    """Review (issue 21) sits next to the Dataset tab whose datasets it reviews."""
    from webui.i18n import tr
    blocks, _ = config(services)
    labels = [tr(str(b.label).split('"key": "')[1].split('"')[0], "en") for b in blocks.blocks.values()
              if isinstance(b, gr.Tab)]
    assert labels == ["Templates", "Dataset", "Review", "Hyperparameters", "Train", "Evaluate", "Export", "Chat"]


def test_no_event_reads_or_writes_a_layout_block(services):
    """Gradio's page refreshes, on every later event, each component an event has ever touched, and
    refreshing a tab or a column copies the data of everything inside it: one tab sent from the
    server made each timer tick copy the whole app (see SET_LANGUAGE_JS in webui/page_script.py)."""
    _, cfg = config(services)
    kinds = {c["id"]: c["type"] for c in cfg["components"]}
    layout = {"tabitem", "tabs", "column", "row", "group", "accordion", "form", "sidebar"}
    assert layout & set(kinds.values()), "the app has layout blocks (else this test proves nothing)"
    touching = [(d.get("api_name") or d["id"], kinds[i]) for d in cfg["dependencies"]
                for i in d["inputs"] + d["outputs"] if kinds.get(i) in layout]
    assert not touching, touching


def test_events_read_the_settings_from_the_one_box(services):
    """Every input of a finished event stays in the page's loading-status list, walked on every
    status change (webui/fields.py): the ~40 setting widgets must reach events as the one JSON box."""
    blocks, cfg = config(services)
    by_elem = {c["props"].get("elem_id"): c["id"] for c in cfg["components"]}
    box = by_elem["settings-json"]
    api = {d.get("api_name"): d for d in cfg["dependencies"]}
    for name in ("start_training", "save_config", "show_command"):
        assert api[name]["inputs"][-1] == box, name
    widest = max(cfg["dependencies"], key=lambda d: len(d["inputs"]))
    assert len(widest["inputs"]) <= 13, (widest.get("api_name"), len(widest["inputs"]))
    first = cfg["layout"]["children"][0]  # first in the page's tree (in Gradio's automatic form): found at once
    assert box in (first["id"], *(c["id"] for c in first.get("children", [])[:1]))


def test_progress_overlays_only_where_an_event_names_them(services):
    """Gradio's default puts every output of every event in that list for good (webui/serving.py)."""
    _, cfg = config(services)
    deps = cfg["dependencies"]
    assert all(d["show_progress_on"] is not None for d in deps)
    named = {i for d in deps for i in d["show_progress_on"]}
    elem = {c["id"]: c["props"].get("elem_id") for c in cfg["components"]}
    assert {elem[i] for i in named} == {"ds-summary", "ds-lengths", "ds-clean-message", "chat-bot", "chat-bot-base",
                                        "demo-message", "rv-counts", "rv-scan-summary"}


def test_quick_answers_skip_the_queue_and_slow_ones_keep_it(services):
    """An unqueued event is one request and its reply; a queued one is an event stream whose every
    step costs the page a pass over its status list (webui/serving.quick_without_queue)."""
    _, cfg = config(services)
    queued = {d.get("api_name"): d["queue"] for d in cfg["dependencies"] if d.get("api_name")}
    quick = ["start_training", "stop_job", "resume_job", "retry_job", "use_template_demo", "show_command", "save_config",
             "load_config", "undo_clean", "clean_dedupe", "refresh_job", "run_evaluation",
             "merge_export", "chat_unload", "review_filter", "review_next", "review_previous", "review_keep", "review_drop",
             "review_fix"]
    slow = ["upload_dataset", "check_dataset", "clean_filter_long", "chat_send", "share_demo", "stop_demo", "review_open",
            "review_scan", "review_mark_all", "review_redact_one", "review_redact_kinds", "review_redact_all", "review_diff",
            "review_import_marks", "review_save_edit", "review_undo",
            "start_training_slurm",  # waits on the cluster's controller; found under its wrappers (serving._inner)
            # the page shows no error box for an unqueued event: a download of a file deleted by hand said nothing
            "download_dataset", "review_export_marks"]
    assert [n for n in quick if queued[n]] == []
    assert [n for n in slow if not queued[n]] == []


def test_only_the_post_pass_decides_the_queue():
    """serving.quick_without_queue is the one place: a `queue=` in an event would be a second rule."""
    from pathlib import Path
    webui = Path(__file__).resolve().parents[2] / "webui"
    setters = [f"{p.name}:{n}" for p in webui.rglob("*.py") for n, line in enumerate(p.read_text().splitlines(), 1)
               if "queue=False" in line or "queue=True" in line]
    assert not setters, setters


def test_every_plot_names_its_axes_in_the_pages_language(services):
    """A plot's axis titles were English words ("loss", "learning rate", "rows") on every page."""
    from gradio.i18n import I18nData
    blocks, _ = config(services)
    plots = [b for b in blocks.blocks.values() if isinstance(b, (gr.LinePlot, gr.BarPlot, gr.ScatterPlot))]
    assert len(plots) >= 5
    untranslated = [(b.elem_id, axis, getattr(b, axis)) for b in plots for axis in ("x_title", "y_title")
                    if not isinstance(getattr(b, axis), I18nData)]
    assert not untranslated, untranslated
