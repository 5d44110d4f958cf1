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
