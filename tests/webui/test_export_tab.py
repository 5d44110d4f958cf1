"""The Export tab's handlers without a browser."""

def test_export_refusals_name_the_box_as_the_page_names_it(gui, monkeypatch):
    """A refused export name said 'name: ... is a path, not a name' on the Chinese page: the box's key,
    not its label (导出名称), as the Evaluate tab's refusals do."""
    from core import export as X
    from webui.i18n import tr
    from webui.tabs import export_tab as ext
    monkeypatch.setattr(X, "export_plan", lambda *a, **k: {})  # no finished run needed to refuse a name
    _, message, _ = ext.start_merge(gui, "zh-CN", "a-run", "../../etc/evil", "int3", None, "a\x00b")
    for key in ("ex.name", "ex.dtype", "ex.system"):
        assert f"**{tr(key, 'zh-CN')}**" in message, message


def test_the_suggested_export_name_is_one_the_export_takes(gui):
    """The name box is filled from the job's name (and an empty box sends it): for a job named '_test', 'a..b'
    or with a long name the export refused its own suggestion (found calling the tab's events)."""
    from core.export import check_export_name
    from webui.tabs import export_tab as ext
    for name in ("_test", "a..b", "x" * 150, "é" * 95, "...", "-.-", "丹炉 v1"):
        job = gui.store.create(kind="train", name=name, run_dir=str(gui.ws.runs / "x"))
        suggested = ext.suggest_name(gui, job.id)
        assert check_export_name(suggested) == suggested, (name, suggested)


def test_the_export_stop_button_stops_only_an_export(gui, monkeypatch):
    """The tab's hidden job box reaches Stop as any text a direct HTTP call sends: a running training or
    evaluation job's id was stopped as if it were the export (found calling stop_export over HTTP)."""
    from core import jobs as J
    from core import launcher
    from webui.tabs import export_tab as ext
    stopped = []
    monkeypatch.setattr(launcher, "cancel", lambda ws, job_id, *a, **k: stopped.append(job_id) or gui.store.get(job_id))
    for kind in ("train", "eval", "merge"):
        job = gui.store.create(kind=kind, name=kind, run_dir=str(gui.ws.runs / kind))
        gui.store.transition(job.id, J.STARTING)
        said = ext.stop_export(gui, "en", job.id)
        assert ("Stopping" in said) == (kind == "merge"), (kind, said)
    assert [gui.store.get(i).kind for i in stopped] == ["merge"]


def test_the_export_plan_says_the_disk_needed_and_free_as_one_sentence(gui, monkeypatch):
    """The line was put together from pieces around the sizes: 'Disco: necesita unos 1.21 GB · 48.4 GB libres'
    in Spanish, '48.4 GB 空き' in Japanese, '48.4 GB 여유' in Korean, '48.4 GB 可用' in Chinese."""
    from core import export as X
    from webui.tabs import export_tab as ext
    plan = dict(base_model="tiny", params=1000, rows=[dict(format="safetensors", bytes=10, seconds=1)],
                need_bytes=1_300_000_000, free_bytes=52_000_000_000, enough_disk=True, tools_note=False)
    monkeypatch.setattr(X, "export_plan", lambda *a, **k: plan)
    expected = {"es": "Disco: hace falta aprox. 1.21 GB en el punto máximo; libres: 48.4 GB",
                "ja": "ディスク：ピーク時に約 1.21 GB 必要、空き 48.4 GB",
                "ko": "디스크: 최대 약 1.21 GB 필요, 여유 공간 48.4 GB",
                "zh-CN": "磁盘：峰值约需 1.21 GB，可用 48.4 GB",
                "en": "Disk: needs about 1.21 GB at its peak; 48.4 GB free"}
    for lang, line in expected.items():
        assert line in ext.plan_markdown(gui, lang, "a-run", ["safetensors"]), lang


def test_the_exports_table_gives_the_folder_the_most_room(gui):
    """Left to Gradio, a long export name widened its column and the folder, the one a person copies, sat off
    the table's right edge (seen in Chromium): each column has its share, the folder the largest."""
    import gradio as gr
    from webui.tabs import export_tab as ext
    with gr.Blocks():
        tab = ext.build(gui)
    widths = [float(w.rstrip("%")) for w in tab.exports.column_widths]
    assert len(widths) == len(ext.EXPORT_COLUMNS) and sum(widths) <= 100 and tab.exports.wrap
    assert max(widths) == widths[ext.EXPORT_COLUMNS.index("path")]
