"""The Train tab's plots: loss and learning rate, and a preference run's reward margin and accuracy,
as the typed frames gr.LinePlot draws, thinned so that a long run does not flood every open page."""
import gradio as gr
import pandas as pd

from core import progress
from webui.i18n import tr

MAX_PLOT_POINTS = 300
# Tick labels as plain numbers (d3's "~g": six significant digits, no trailing zeros). Left to Vega-Lite,
# a run with one logged point had a one-value axis, whose ticks read "1.000000" (step) and "2.727273" (loss).
AXIS_FORMATS = dict(x_axis_format="~g", y_axis_format="~g")


def plot_frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Loss (train and validation, one colour each) and learning rate against the step."""
    train, evals = progress.split_metrics(records)
    train = thin([r for r in train if r.get("loss") is not None])
    # The plot fixes its colours from the series of its first data and never revisits them: the
    # series names stay the same in every language (a switch would leave the lines undrawn), and the
    # plot's translated label names the colours.
    rows = [(r["step"], r["loss"], SERIES_TRAIN) for r in train]
    rows += [(r["step"], r["eval_loss"], SERIES_EVAL) for r in thin(evals)]
    if rows and not evals:
        # for the same reason the validation series is there from the start, as one empty (NaN) point
        rows.append((rows[0][0], float("nan"), SERIES_EVAL))
    lrs = [(r["step"], r["lr"]) for r in train if r.get("lr") is not None]
    return typed_frame(rows, LOSS_COLUMNS), typed_frame(lrs, LR_COLUMNS)


def all_frames(run_dir) -> tuple:
    """The loss, learning-rate, reward-margin and preference-accuracy frames of a run, from one read."""
    records = progress.read_metrics(run_dir)
    return (*plot_frames(records), *pref_frames(records))


def pref_frames(records: list[dict]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Reward margin and preference accuracy (train and validation) of a preference run; (None, None)
    for a supervised run, whose metrics have neither."""
    out = []
    for key, columns in (("reward_margin", MARGIN_COLUMNS), ("pref_accuracy", ACCURACY_COLUMNS)):
        train = thin([r for r in records if r.get(key) is not None])
        evals = thin([r for r in records if r.get("eval_" + key) is not None])
        rows = [(r["step"], r[key], SERIES_TRAIN) for r in train]
        rows += [(r["step"], r["eval_" + key], SERIES_EVAL) for r in evals]
        if rows and not evals:  # the validation colour is fixed from the start (see plot_frames)
            rows.append((rows[0][0], float("nan"), SERIES_EVAL))
        out.append(typed_frame(rows, columns))
    return out[0], out[1]


def pref_updates(margin: pd.DataFrame | None, accuracy: pd.DataFrame | None, lang: str) -> tuple:
    """The two preference plots: shown with their data for a preference run, hidden otherwise. Their axes
    are named here, in `lang`: built hidden, they showed Gradio's untranslated label object instead
    ('__i18n__{"__type__": "translation_...' on both axes, every language; the Chinese walk's DPO run)."""
    shown = margin is not None or accuracy is not None
    if not shown:
        return gr.update(value=margin, visible=False), gr.update(value=accuracy, visible=False)
    step = tr("axis.step", lang)
    return (gr.update(value=margin, visible=True, x_title=step, y_title=tr("axis.reward_margin", lang)),
            gr.update(value=accuracy, visible=True, x_title=step, y_title=tr("axis.pref_accuracy", lang)))


def thin(records: list[dict], limit: int = MAX_PLOT_POINTS) -> list[dict]:
    """At most `limit` evenly spaced points, always with the newest: a long run would otherwise send
    thousands of points to every open page on every tick, and the pages would spend their time drawing."""
    if len(records) <= limit:
        return records
    every = -(-len(records) // limit)
    kept = records[::every]
    return kept if kept[-1] is records[-1] else kept + [records[-1]]


SERIES_TRAIN, SERIES_EVAL = "train", "validation"
LOSS_COLUMNS = {"step": "int64", "loss": "float64", "series": "str"}
LR_COLUMNS = {"step": "int64", "learning_rate": "float64"}
MARGIN_COLUMNS = {"step": "int64", "reward_margin": "float64", "series": "str"}
ACCURACY_COLUMNS = {"step": "int64", "pref_accuracy": "float64", "series": "str"}


def typed_frame(rows: list[tuple], columns: dict[str, str]) -> pd.DataFrame | None:
    """A plot's data, or None (an empty plot) while there are no points. An empty frame must never be
    sent: the plot then keeps the axes and colours it worked out for no data (categories, no line
    colour) after the points arrive."""
    if not rows:
        return None
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)
