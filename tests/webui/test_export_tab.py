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
