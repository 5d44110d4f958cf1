"""The Dataset tab's upload summary counts what its problem list shows."""
from __future__ import annotations

from core.data.check import check_file
from webui.i18n import CODES, tr
from webui.tabs.dataset_tab import problem_frame, summary_markdown


def test_the_summary_counts_the_warnings_it_lists(tmp_path):
    """'問題: 4' while 5 rows were listed, one of them a warning (a walk in Japanese): the summary counts
    the problems and the warnings apart, and together they are the rows listed."""
    f = tmp_path / "d.jsonl"
    f.write_text('{"prompt": "a", "completion": "x"}\nnot json\n{"prompt": "b"}\n')
    report = check_file(f).to_dict()
    assert report["problem_count"] == 2 and len(report["warnings"]) == 1  # too few rows: a warning
    info = {"display_name": "d.jsonl", "version": 1, "versions": [1]}
    for lang in CODES:
        said = summary_markdown(report, info, lang)
        assert f"{tr('ds.problem_count', lang)}: **2**" in said and f"{tr('ds.warning_count', lang)}: **1**" in said, said
        assert len(problem_frame(report, lang)) == 3
