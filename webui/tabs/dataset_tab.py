"""Dataset tab: upload, detected format and row count, the problems table.

(Interim: wired to core.data.load_examples until the data studio API lands.)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from core.data import load_examples
from core.errors import InputError
from webui.i18n import L, tr

PROBLEM_COLUMNS = ["line", "field", "message", "fix"]


@dataclass(frozen=True)
class DatasetTab:
    upload: gr.File
    check: gr.Button
    summary: gr.Markdown
    problems: gr.Dataframe
    chosen_path: gr.Textbox   # the file training will use (copied into the `dataset` setting)


def check_dataset(path, fmt: str, lang: str):
    """Inputs: uploaded file, format setting, language. Outputs: summary, problems table, path training uses."""
    if not path:
        return tr("ds.none", lang), pd.DataFrame(columns=PROBLEM_COLUMNS), gr.skip()
    path = Path(path)
    try:
        loaded = load_examples(path, fmt or "auto")
    except InputError as e:
        rows = [[p.where, "", p.message, p.hint] for p in e.problems]
        return (f"⚠ **{tr('ds.has_problems', lang)}** ({len(e.problems)})", pd.DataFrame(rows, columns=PROBLEM_COLUMNS),
                gr.skip())
    summary = (f"✓ **{path.name}** · {tr('ds.format', lang)}: `{loaded.format}` · {tr('ds.rows', lang)}: "
               f"**{loaded.rows}** · {tr('ds.examples', lang)}: {len(loaded.examples)}")
    return summary, pd.DataFrame(columns=PROBLEM_COLUMNS), str(path)


def build(gui) -> DatasetTab:
    gr.Markdown("## " + L("ds.title"))
    gr.Markdown(L("ds.intro"), elem_classes=["muted"])
    upload = gr.File(label=L("ds.upload"), file_types=[".jsonl", ".json", ".csv", ".tsv", ".parquet", ".xlsx"],
                     elem_id="ds-upload")
    check = gr.Button(L("ds.check"), variant="primary", elem_id="ds-check")
    summary = gr.Markdown(elem_id="ds-summary")
    problems = gr.Dataframe(value=pd.DataFrame(columns=PROBLEM_COLUMNS), label=L("ds.problems"), interactive=False,
                            wrap=True, elem_id="ds-problems")
    chosen_path = gr.Textbox(label=L("ds.chosen"), interactive=False, visible=False, elem_id="ds-chosen")
    return DatasetTab(upload=upload, check=check, summary=summary, problems=problems, chosen_path=chosen_path)
