"""The Train tab's "Where to run": this computer, or a Slurm cluster (partitions with their free GPUs
from sinfo, nodes x GPUs per node, time limit, requeue). Shown only where Slurm's `sbatch` is on PATH
and configured for a cluster; elsewhere the tab looks as it always did. The values become a core.slurm.spec.SlurmSpec, on top of
the `slurm:` defaults in settings.yaml, and are checked there like any other value from the page.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
import gradio as gr

from core import jobs as J
from core.config import as_number
from core.errors import DanluError
from core.messages import Msg
from webui import numbers
from webui.i18n import L, error_text, tr

LOCAL, SLURM = "local", "slurm"


@dataclass
class WherePanel:
    where: gr.Radio
    partition: gr.Dropdown
    refresh: gr.Button
    nodes: gr.Number
    gpus_per_node: gr.Number
    time: gr.Textbox
    requeue: gr.Checkbox
    cluster: gr.Markdown
    start: gr.Button | None = None  # "Start on the cluster", beside Start training (train_tab.build places it)

    @property
    def slurm_widgets(self) -> list:
        """Shown only for a cluster (each one itself: no event may touch a layout block, see test_build_ui)."""
        return [self.partition, self.refresh, self.nodes, self.gpus_per_node, self.time, self.requeue, self.cluster]

    @property
    def inputs(self) -> list:
        """What "Start on the cluster" takes from here (before the settings box, which comes last)."""
        return [self.partition, self.nodes, self.gpus_per_node, self.time, self.requeue]


def slurm_here() -> bool:
    """Slurm's tools are here and configured for a cluster (asked once, when the page is built)."""
    from core.slurm.commands import configured
    return configured()


def defaults(gui):
    """settings.yaml's Slurm defaults (a broken file shows its problems on Start, not here)."""
    from core.slurm.executor import spec_for
    from core.slurm.spec import SlurmSpec
    try:
        return spec_for(gui.ws)
    except DanluError:
        return SlurmSpec()


def partitions(lang: str, chosen: str | None):
    """Inputs: language, chosen partition. Outputs: the partition picker (free GPUs from sinfo), the
    cluster line, "Start on the cluster". A cluster that cannot be reached says so in the line and is
    not offered a start that would fail (Refresh asks again); the picker keeps its value."""
    from core.slurm import commands
    if commands.controller_down():  # said at once: sinfo would wait ~10 s to say the same
        return gr.update(), f"⚠ {tr('slurm.controller_down', lang)}", gr.update(interactive=False)
    try:
        found = commands.partitions()
    except DanluError as e:
        return gr.update(), f"⚠ {tr('slurm.unreachable', lang)} {error_text(e, lang)}", gr.update(interactive=False)
    choices = [(partition_label(p, lang), p.name) for p in found]
    names = [p.name for p in found]
    value = chosen if chosen in names else next((p.name for p in found if p.default), names[0] if names else None)
    free = sum(p.gpus_free for p in found)
    line = tr("slurm.cluster_line", lang, n=len(found), free=free)
    return gr.update(choices=choices, value=value), f"{line}  \n{tr('slurm.script_note', lang)}", gr.update(interactive=True)


def partition_label(p, lang: str) -> str:
    """'gpu (default) · 13 of 24 GPUs free · 2 nodes · up to 2-00:00:00', in the page's language."""
    gpus = tr("slurm.gpus_line", lang, free=p.gpus_free, total=p.gpus) if p.gpus else \
        tr("slurm.cpus_line", lang, cpus=p.cpus_idle)
    text = f"{p.name}{tr('slurm.default', lang) if p.default else ''} · {gpus} · " \
        f"{tr('slurm.nodes_line', lang, n=p.usable_nodes)}"
    if p.time_limit not in ("", "infinite", "UNLIMITED"):
        text += " · " + tr("slurm.limit_line", lang, limit=p.time_limit)
    return text


def show(where: str):
    """Inputs: where to run. Outputs: the seven Slurm widgets and "Start on the cluster" (shown for a
    cluster), the GPU picker and Start training (for this computer)."""
    cluster, here = gr.update(visible=where == SLURM), gr.update(visible=where != SLURM)
    return (*[cluster] * 7, cluster, here, here)


# the widget that holds each setting, to name it in a problem (the rest come from settings.yaml)
WIDGETS = {"partition": "slurm.partition", "nodes": "slurm.nodes", "gpus_per_node": "slurm.gpus_per_node",
           "nproc": "train.nproc", "time": "slurm.time"}


# what core names by the CLI's flags (core.slurm.executor.check_submit: the cluster, its partitions and limits)
FLAG_WIDGETS = {"--slurm": "where.label", "--partition": "slurm.partition", "--nodes": "slurm.nodes",
                "--time": "slurm.time"}


def named_on_page(problems: list, lang: str) -> list:
    """The problems of a start on the cluster naming the page's boxes, not the CLI's flags: "Where to
    run" (the page has no --slurm), "Partition", ..."""
    return [dataclasses.replace(p, where=tr(FLAG_WIDGETS[p.where], lang)) if p.where in FLAG_WIDGETS else p
            for p in problems]


def spec_from_page(gui, lang, nproc, partition, nodes, gpus_per_node, time_limit, requeue):
    """The page's values on top of settings.yaml's defaults, checked in core (core.slurm.spec); a
    problem names the widget it came from."""
    from core.errors import InputError
    from core.slurm.executor import spec_for
    gpn = _int(gpus_per_node)
    spec = spec_for(gui.ws, partition=(partition or None), nodes=_int(nodes), gpus_per_node=gpn,
                    nproc=_int(nproc) if gpn == 0 else None, time=(time_limit or "").strip() or None,
                    requeue=bool(requeue))
    problems = spec.problems(lambda n: tr(WIDGETS[n], lang) if n in WIDGETS else f"settings.yaml: slurm.{n}")
    if problems:
        raise InputError(problems=problems, title=Msg("cluster.page_title"))
    return spec


def _int(value):
    n = as_number(value, int)  # a direct HTTP call may send anything: NaN, 1e999, text, 5,000 digits
    if value in (None, ""):
        return None
    return value if n is None or abs(n) == math.inf else n  # the spec names what is no whole number it takes


def where_text(job: J.Job, lang: str) -> str:
    """The job table's "where" column: 'this computer' or 'Slurm 4242 · gpu[01-02]'."""
    if getattr(job, "executor", "local") != SLURM:
        return tr("slurm.this_computer", lang)
    from core.slurm.executor import attempt_nodes
    nodes = attempt_nodes(job)
    return f"Slurm {job.slurm_job_id}" + (f" · {nodes}" if nodes else "")


def requeued_as(gui, job_id: str | None, seen: str = "") -> str | None:
    """The attempt that continues a Slurm job (<id>-rN) when the page watched it run and it was then
    interrupted and requeued itself, as `train --slurm` follows it; else job_id (an interrupted
    attempt picked from the table stays picked)."""
    from core.slurm.executor import next_attempt_id
    job = gui.live.job(job_id)
    watched_running = bool(job_id) and seen.startswith(f"{job_id}|") and not seen.startswith(f"{job_id}|{J.INTERRUPTED}|")
    if job is None or job.executor != SLURM or job.state != J.INTERRUPTED or not watched_running:
        return job_id
    later = gui.live.job(next_attempt_id(job.id))
    return later.id if later is not None else job_id


def build(gui) -> WherePanel:
    here = slurm_here()
    spec = defaults(gui) if here else None
    where = gr.Radio(choices=[(L("where.local"), LOCAL), (L("where.slurm"), SLURM)], value=LOCAL,
                     label=L("where.label"), info=L("where.help"), elem_id="train-where", visible=here)
    with gr.Row(elem_id="train-slurm"):
        partition = gr.Dropdown(choices=[(spec.partition, spec.partition)] if spec and spec.partition else [],
                                value=spec.partition if spec and spec.partition else None, allow_custom_value=True,
                                label=L("slurm.partition"), info=L("slurm.partition_help"),
                                elem_id="train-slurm-partition", scale=3, visible=False)
        refresh = gr.Button(L("slurm.refresh"), elem_id="train-slurm-refresh", scale=0, min_width=100, visible=False)
    with gr.Row():
        nodes = numbers.Number(value=spec.nodes if spec else 1, precision=0, minimum=1, label=L("slurm.nodes"),
                               elem_id="train-slurm-nodes", visible=False)
        gpus_per_node = numbers.Number(value=spec.gpus_per_node if spec else 1, precision=0, minimum=0,
                                       label=L("slurm.gpus_per_node"), info=L("slurm.gpus_per_node_help"),
                                       elem_id="train-slurm-gpus", visible=False)
        time_limit = gr.Textbox(value=spec.time if spec else "", label=L("slurm.time"), info=L("slurm.time_help"),
                                placeholder="04:00:00", elem_id="train-slurm-time", visible=False)
    requeue = gr.Checkbox(value=bool(spec and spec.requeue), label=L("slurm.requeue"), elem_id="train-slurm-requeue",
                          visible=False)
    cluster = gr.Markdown(L("slurm.script_note"), elem_id="train-slurm-cluster", visible=False)
    return WherePanel(where=where, partition=partition, refresh=refresh, nodes=nodes,
                      gpus_per_node=gpus_per_node, time=time_limit, requeue=requeue, cluster=cluster)


def partitions_if_slurm(lang: str, where: str, chosen: str | None):
    """Inputs: language, where to run, chosen partition. Outputs: as partitions(); nothing for this computer."""
    return partitions(lang, chosen) if where == SLURM else (gr.skip(), gr.skip(), gr.skip())


def wire(panel: WherePanel, lang, gpus, start) -> None:
    panel.where.change(show, inputs=[panel.where], outputs=[*panel.slurm_widgets, panel.start, gpus, start],
                       api_visibility="private")
    # the partitions' words come from here, not from the page's translations: re-read in a new language too
    for event in (panel.where.change, panel.refresh.click, lang.change):
        event(partitions_if_slurm, inputs=[lang, panel.where, panel.partition],
              outputs=[panel.partition, panel.cluster, panel.start], api_visibility="private")
