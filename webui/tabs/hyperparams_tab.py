"""Hyperparameters tab: every TrainConfig setting as a widget, recipe presets, validation as you
type, save/load YAML, the exact CLI line, and a memory-fit estimate for the chosen hardware."""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from core import presets, trust
from core.config import FIELDS, coerce, out_of_bounds, quoted, read_yaml, save_config, to_yaml, unknown_key, whole
from core.errors import InputError, Problem
from core.launch_commands import cli_command
from core.launcher import MAX_NPROC, LaunchSpec
from core.memory import estimate, fit_advice, sequences_per_example
from core.memory import model_shape
from core.model_folder import folder_saved_bits
from core.risks import beyond_context
from core.memory_plan import MODES, SHARDING, choose_sharding, layers_compiled, mlp_tiles, plan_memory
from core.messages import Msg, label
from webui import fields
from webui.i18n import L, has, preset_text, said_in_all, say, tr
from webui.jobview import finished_runs, with_table_status
from webui.serving import downloads_dir

GROUP_KEYS = {"model": "grp.model", "data": "grp.data", "lora": "grp.lora", "training": "grp.training",
              "logging": "grp.logging", "speed": "grp.speed"}
MEMORY_INPUTS = ("base_model", "quantization", "max_seq_length", "micro_batch_size", "lora_rank",
                 "gradient_checkpointing", "fused_loss", "offload_activations", "memory_plan", "sharding", "method",
                 "compile")
# the largest whole number a number box holds exactly (JavaScript's); past 2**64 Gradio cannot even send it
# ("Integer exceeds 64-bit range": `max_seq_length: 99999999999999999999999` made the whole Load say nothing)
BOX_INT = 2**53 - 1
LOAD_SUFFIXES = (".yaml", ".yml")  # what Load config takes by name (its button takes any file: load_settings)


@dataclass(frozen=True)
class HyperparamsTab:
    widgets: dict[str, gr.components.Component]  # every field built here (all but base_model)
    recipe: gr.Dropdown
    recipe_info: gr.Markdown
    problems: gr.Markdown
    memory: gr.Markdown
    save: gr.Button
    saved_file: gr.File
    load: gr.UploadButton
    loaded: gr.Markdown
    said: gr.Textbox                # what Load config said, in every language (JSON, hidden)
    show_command: gr.Button
    command: gr.Textbox
    command_said: gr.Textbox        # the command box's note in every language (JSON, hidden); empty for a command line


def recipe_choices() -> list[tuple[str, str]]:
    return [(p.name, p.name) for p in presets.all_presets() if p.kind == "recipe"]


def problems_markdown(problems: list[Problem], lang: str, title_key: str = "hp.problems", title: Msg | None = None,
                      labels: str = "") -> str:
    """Every problem in words, naming the setting by its (translated) label, under the heading
    `title_key` (or core's `title`); core's messages in `lang` (their codes, webui/locales). `labels`: a
    tab's key prefix whose `<prefix><where>` names a box of that tab (ev.: Evaluate's max_samples is
    "Prompts to compare"), for places that are no setting."""
    if not problems:
        return f"✓ {tr('hp.valid', lang)}"
    lines = [f"⚠ **{say(title, lang) if title is not None else tr(title_key, lang)} ({len(problems)})**"]
    for p in problems:
        name = p.where.split(".")[0]
        if name in FIELDS:
            where = f"**{tr('field.' + name, lang)}** (`{p.where}`)"
        else:
            where = f"**{tr(labels + p.where, lang) if labels and has(labels + p.where) else p.where}**"
        hint = shown_as_text(say(p.hint_msg, lang))
        lines.append(f"- {where}: {shown_as_text(say(p.msg, lang))}" + (f" — {hint}" if hint else ""))
    return "\n".join(lines)


def shown_as_text(text: str) -> str:
    """`text` with its "<" shown as such outside `code`: a YAML parser's "expected <block end>, but found
    ':'" was read as an HTML tag, and the page cut the problem off at "(expected" (a browser walk)."""
    parts = text.split("`")
    return "`".join(part if i % 2 else part.replace("<", "&lt;") for i, part in enumerate(parts))


def validate_settings(gui, lang: str, *values) -> str:
    """Inputs: language, every setting (fields.NAMES order). Outputs: the problems, in words."""
    _, problems = fields.build_config(dict(zip(fields.NAMES, values)), gui.ws)
    return problems_markdown(problems, lang)


def apply_recipe(name: str) -> list:
    """Inputs: recipe preset. Outputs: every setting; those the recipe does not set stay as they are."""
    if not name:
        return [gr.skip()] * len(fields.NAMES)
    settings = presets.get(name, "recipe").data.get("settings") or {}
    return [fields.to_widget_value(n, settings[n]) if n in settings else gr.skip() for n in fields.NAMES]


def describe_recipe(name: str, lang: str) -> str:
    """Inputs: recipe preset, language. Outputs: what the recipe is for."""
    if not name:
        return ""
    p = presets.get(name, "recipe")
    return preset_text(p.name, "description", p.description, lang)


def free_memory(gpus: list[dict], chosen: list) -> tuple[float, str, int]:
    """(free GiB per process, device words, GPUs the run will use): the tightest chosen GPU, or this
    computer's RAM."""
    picked = [g for g in gpus if g["index"] in [c for c in chosen or [] if c != "cpu"]] or gpus
    if picked:
        g = min(picked, key=lambda g: g["memory_free_mib"])
        return g["memory_free_mib"] / 1024, f"GPU {g['index']} ({g['name']})", len(picked)
    import psutil
    return psutil.virtual_memory().available / 2**30, "CPU", 0


def memory_fit(gui, lang: str, chosen: list, base_model, quantization, max_seq_length,
               micro_batch_size, lora_rank, gradient_checkpointing, fused_loss, offload_activations=False,
               memory_plan="lowest", sharding="off", method="sft", compile=True) -> str:
    """Outputs: the estimate for one process of this run, whether it fits, and the memory plan and
    the sharding the recipe will choose (core/memory_plan.py), in words."""
    gpus = gui.gpus()
    try:
        shape, name = model_shape(base_model, gui.ws, origin=trust.BROWSER)
        checked = trust.check_base_model(base_model, gui.ws, trust.BROWSER) if shape else None
    except InputError as e:
        return problems_markdown(e.problems, lang)
    if shape is None:
        return f"ℹ {tr('mem.unknown', lang)} (`{name}`)"
    if not within_bounds(max_seq_length=max_seq_length, micro_batch_size=micro_batch_size, lora_rank=lora_rank):
        return f"ℹ {tr('mem.cannot', lang)}"  # the settings check beside it names the value and its bounds
    # a checkpoint saved quantized loads as saved: its weights are what the estimate counts
    saved = folder_saved_bits(checked)
    notes = [Msg("config.saved_quantization", model=name, saved=saved, setting=quantization)] if saved and saved != quantization else []
    notes += [m for m in [beyond_context(checked, int(max_seq_length))] if m]
    quantization = saved or quantization
    on_cpu, auto = not gpus, memory_plan == "auto"
    free, device, n_gpus = free_memory(gpus, chosen)
    try:
        # a preference step runs chosen + rejected: the model sees twice the rows of the micro-batch
        rows = int(micro_batch_size or 1) * sequences_per_example(method)
        common = dict(micro_batch_size=rows, quantization=quantization, lora_rank=int(lora_rank or 16),
                      fused_loss=bool(fused_loss) and not on_cpu, act_bytes=4 if on_cpu else 2)
        # "auto" can always fall back to recomputing and offloading: whether the run fits at all is
        # judged at that floor; the plan then says what the rest of the memory buys
        split = choose_sharding(shape, mode=sharding if sharding in SHARDING else "off", gpus=n_gpus, free_gib=free,
                                seq=int(max_seq_length or 16), **common) if not on_cpu else None
        tiled = layers_compiled(compile, on_gpu=not on_cpu, sharded=bool(split and split.fsdp))
        est = estimate(shape, max_seq_length=int(max_seq_length or 16), offload_activations=(bool(offload_activations) or auto)
                       and not on_cpu, gradient_checkpointing=bool(gradient_checkpointing) or auto,
                       mlp_tiles=mlp_tiles(int(max_seq_length or 16), tiled), **common)
        plan = plan_memory(shape, mode=memory_plan if memory_plan in MODES else "lowest", free_gib=free,
                           gradient_checkpointing=bool(gradient_checkpointing), offload_activations=bool(offload_activations),
                           can_offload=not on_cpu, seq=int(max_seq_length or 16), tiled=tiled, **common)
    except (KeyError, TypeError, ValueError):
        return f"ℹ {tr('mem.cannot', lang)}"
    return _memory_words(est, plan, split, free, name, device, lang, notes)


def within_bounds(**values) -> bool:
    """Each value a whole number inside its TrainConfig field's bounds: no estimate is made of a
    length or a batch the run would refuse (a Load config or a direct call can send any)."""
    for name, value in values.items():
        try:
            n = int(value)
        except (TypeError, ValueError, OverflowError):
            return False
        low, high = FIELDS[name].metadata["min"], FIELDS[name].metadata["max"]
        if (low is not None and n < low) or (high is not None and n > high):
            return False
    return True


def _memory_words(est, plan, split, free: float, name: str, device: str, lang: str, notes: list[Msg] = ()) -> str:
    d = est.to_dict()
    fits = est.total_gib <= free * 0.9 or bool(split and split.fsdp)
    head = f"{'✓' if fits else '⚠'} **{tr('mem.title', lang)}** — {name} · {device}"
    advice = say(split.why, lang) if split and split.fsdp else say(fit_advice(est, free), lang)
    lines = [head] + [f"ℹ {say(note, lang)}" for note in notes] + [advice, say(plan.why, lang)]
    if split and split.why and not split.fsdp:
        lines.append(say(split.why, lang))
    parts = " · ".join(f"{tr('mem.' + k, lang)} {d[k + '_gib']}" for k in ("weights", "lora", "activations", "loss",
                                                                         "context")) + " GiB"
    return "\n\n".join(lines) + f"\n\n<span class='muted'>{parts}</span>"


def save_settings(gui, lang: str, *values):
    """Inputs: language, every setting. Outputs: a YAML file to download, the problems, and the note under
    the buttons (in every language, i18n.Said): saved, or not. The problems box above the buttons shows
    its list all the time, so a refused save looked like a click that did nothing (under the last Load
    config's note)."""
    cfg, problems = fields.build_config(dict(zip(fields.NAMES, values)), gui.ws, check_files=False)
    if cfg is None:
        refused = said_in_all(lambda code: f"⚠ **{tr('hp.not_saved', code)}** ({len(problems)})", lang)
        return None, problems_markdown(problems, lang), refused
    path = downloads_dir(gui.ws) / f"danlu-config-{time.strftime('%Y%m%d-%H%M%S')}.yaml"
    # a plain write: this is a copy to download, not a record that must survive a power cut
    path.write_text(to_yaml(cfg, "Danlu training config, saved from the GUI.\nRun it:  python app.py train " + path.name),
                    encoding="utf-8")
    saved = said_in_all(lambda code: f"✓ {tr('hp.saved', code)} `{path.name}`", lang)
    return str(path), problems_markdown(problems, lang), saved


def load_settings(gui, path, lang: str, *current) -> list:
    """Inputs: an uploaded YAML, language, and optionally the settings now shown (fields.NAMES order).
    Outputs: every setting (one that already has the file's value is skipped), then what happened to
    the file in words (loaded, or its unreadable lines and unknown keys; in every language, i18n.Said).
    A file naming a path outside the allowed folders changes nothing (core.trust), whatever else it holds;
    nor does one not named as YAML (LOAD_SUFFIXES), refused in words once its path is checked."""
    data = None
    try:
        path = trust.check_upload(path, gui.ws, trust.BROWSER, field="config file", suffixes=LOAD_SUFFIXES,
                                  hint=Msg("config.load_yaml.hint"))  # an upload, not any file; named as YAML
        data = read_yaml(path, shown_as=Path(path).name)
        if not isinstance(data, dict):
            raise InputError(problems=[Problem(Path(path).name, Msg("config.not_settings"))])
        trust.check_values({k: v for k, v in data.items() if k in FIELDS}, gui.ws, trust.BROWSER)
    except InputError as e:
        # all that is wrong at once: a refused path and the file's other unusable values together
        problems = e.problems + (file_problems(data)[1] if isinstance(data, dict) else [])
        refused = said_in_all(lambda code: problems_markdown(problems, code, "hp.load_notes"), lang)
        return [gr.skip()] * len(fields.NAMES) + [refused]
    known, problems = file_problems(data)
    full = fields.config_values(known, fields.NAMES)
    values = fields.changed_only(full, current)
    reset = [n for n, new, now in zip(fields.NAMES, full, current) if n not in known and new != now]
    # a value the file names but that could not be used is no setting it "does not name" (a walk in Korean)
    refused = [n for n in reset if n in data]
    reset = [n for n in reset if n not in data]
    # what is wrong with the values themselves shows in the settings check, which follows every change
    name = Path(path).name

    def note(code: str) -> str:
        said = problems_markdown(problems, code, "hp.load_notes") if problems else f"✓ {tr('hp.loaded', code)} `{name}`"
        if reset:  # as `python app.py train` runs the file: a newcomer may expect them kept
            said += "\n\n" + tr("hp.load_reset", code, names=", ".join(say(label(n), code) for n in reset))
        if refused:
            said += "\n\n" + tr("hp.load_refused", code, names=", ".join(say(label(n), code) for n in refused))
        return said
    return values + [said_in_all(note, lang)]


def file_problems(data: dict) -> tuple[dict, list[Problem]]:
    """A loaded file's settings as their types, and a problem for each unusable value and unknown key."""
    known, problems = loadable({k: v for k, v in data.items() if k in FIELDS})
    return known, problems + [unknown_key(k, ignored=True) for k in data if k not in FIELDS]


def loadable(values: dict) -> tuple[dict, list[Problem]]:
    """The file's values as their settings' types, and a problem for each that is none (a list for a
    number, a text that is no number, infinity): such a value cannot be shown in its widget, and
    sending it failed the whole Load with no word of why. Bounds are the settings check's to say."""
    out, problems = {}, []
    for name, value in values.items():
        v, problem = coerce(name, value)
        if problem is None and isinstance(v, float) and not math.isfinite(v):
            problem = Problem(name, Msg("config.not_finite", label=label(name), value=str(v)))
        if problem is None and isinstance(v, int) and not isinstance(v, bool) and abs(v) > BOX_INT:
            problem = out_of_bounds(name, "min" if v < 0 else "max", quoted(v))
        if problem is None:
            out[name] = v
        else:
            problems.append(problem)
    return out, problems


def show_command(gui, lang: str, chosen_gpus: list, nproc, *values) -> str:
    """Inputs: language, GPU choice, process count, every setting. Outputs: the exact command Start would
    run, with its config written to a file so the line runs as shown; or what to fix first, in every
    language (i18n.Said): a language switch says it again. The command line itself speaks no language."""
    cfg, problems = fields.build_config(dict(zip(fields.NAMES, values)), gui.ws, check_files=False)
    if cfg is None:
        return said_in_all(lambda code: "# " + tr("hp.fix_first", code) + "\n"
                           + "\n".join(f"# {say(p.as_msg(), code)}" for p in problems), lang)
    digest = hashlib.sha256(to_yaml(cfg).encode()).hexdigest()[:10]
    path = downloads_dir(gui.ws) / f"danlu-config-{digest}.yaml"
    save_config(cfg, path, header="Danlu training config, written by the GUI's Show command.")
    try:
        spec = launch_spec(chosen_gpus, nproc, lang)
    except InputError as e:
        return said_in_all(lambda code: "\n".join(f"# {say(p.as_msg(), code)}" for p in e.problems), lang)
    n = spec.nproc or (len(spec.gpus) if spec.gpus else 1)
    return cli_command(path, n, spec)


def launch_spec(chosen_gpus: list, nproc, lang: str | None = None) -> LaunchSpec:
    """GPU picker + process count -> LaunchSpec. On the CPU the count is the number of workers: an empty box
    (or 0, as the page reads one) is 1; what else it sent that is no count (a direct HTTP call: -1, NaN, text,
    5,000 digits) is InputError naming the box."""
    gpus = [int(g) for g in chosen_gpus or [] if g != "cpu"]
    if gpus:
        return LaunchSpec(gpus=gpus)
    return LaunchSpec(nproc=whole(nproc or None, tr("train.nproc", lang), 1, MAX_NPROC, default=1))


def build(gui, elsewhere: tuple[str, ...] = ()) -> HyperparamsTab:
    """`elsewhere`: settings whose widgets other tabs show (the model on Templates, the data file on Dataset)."""
    with gr.Row():
        recipe = gr.Dropdown(choices=recipe_choices(), value=None, label=L("hp.recipe"), info=L("hp.recipe_help"),
                             elem_id="hp-recipe", scale=1)
        recipe_info = gr.Markdown(elem_id="hp-recipe-info")
    widgets: dict[str, gr.components.Component] = {}
    runs = finished_runs(gui)
    _field_groups(fields.grouped(advanced=False), elsewhere, widgets, runs)
    with gr.Accordion(L("hp.advanced"), open=False, elem_id="hp-advanced"):
        _field_groups(fields.grouped(advanced=True), elsewhere, widgets, runs)
    problems = gr.Markdown(elem_id="hp-problems")
    memory = gr.Markdown(elem_id="hp-memory")
    with gr.Row():
        save = gr.Button(L("hp.save"), elem_id="hp-save", size="md")
        # any file: load_settings refuses other names in the page's language (Gradio's own refusal of a
        # file type was a notice in English on every page)
        load = gr.UploadButton(L("hp.load"), elem_id="hp-load", size="md")
        show = gr.Button(L("hp.show_command"), elem_id="hp-show-command", size="md")
    loaded = gr.Markdown(elem_id="hp-loaded")  # what Load config made of the file
    said = gr.Textbox("", visible=False, label="said", elem_id="hp-said")
    # always shown (empty until a save): a File that first appears on a click is drawn from scratch
    # then, which took up to a second in the page while a job trained (bench/gui_latency.py)
    saved_file = gr.File(label=L("hp.saved_file"), interactive=False, elem_id="hp-saved-file")  # empty: one line (CSS)
    command = gr.Textbox(label=L("hp.command"), interactive=False, lines=1, max_lines=4, buttons=["copy"],
                         elem_id="hp-command", elem_classes=["log"])
    command_said = gr.Textbox("", visible=False, label="command said", elem_id="hp-command-said")
    return HyperparamsTab(widgets=widgets, recipe=recipe, recipe_info=recipe_info, problems=problems, memory=memory, save=save,
                          saved_file=saved_file, load=load, loaded=loaded, said=said, show_command=show, command=command,
                          command_said=command_said)


def _field_groups(groups: dict[str, list[str]], elsewhere: tuple[str, ...], widgets: dict, runs: list) -> None:
    for group, names in groups.items():
        names = [n for n in names if n not in elsewhere]
        if names:
            _field_group(group, names, widgets, runs)


def _field_group(group: str, names: list[str], widgets: dict, runs: list) -> None:
    gr.Markdown("#### " + L(GROUP_KEYS[group]), elem_classes=["group-title"])
    with gr.Group():
        for row in _pairs(names):
            with gr.Row():
                for name in row:
                    widgets[name] = fields.widget_for(name, run_choices=runs if name == "start_adapter" else None,
                                                      **({"visible": False} if name in PAIRS_ONLY else {}))


# settings that only matter for the pair methods: shown while Method is dpo or orpo (the default is sft)
PAIRS_ONLY = ("pref_beta",)
PAIRS_ONLY_JS = "(m) => ({__type__: 'update', visible: m === 'dpo' || m === 'orpo'})"


def wire_method(t: HyperparamsTab) -> None:
    """Method shows or hides the pair-only settings, in the page alone (no server round trip); a
    template or a loaded file that sets the method changes it, which fires this too."""
    for name in PAIRS_ONLY:
        if "method" in t.widgets and name in t.widgets:
            t.widgets["method"].change(None, inputs=[t.widgets["method"]], outputs=[t.widgets[name]], js=PAIRS_ONLY_JS,
                                       api_visibility="private")


def start_adapter_choices(gui, lang: str, current: str | None, loaded: str | None = None):
    """Inputs: language, the chosen start, the tab's message line. Outputs: the start_adapter picker with every
    finished training run (read again when the tab opens: a run may have finished meanwhile), the message line
    (why the job table cannot be read: jobview.with_table_status); a typed folder or an id not in the list is
    kept; a value that is not text (only a direct HTTP call sends one: 10**30 sent back made Gradio answer HTTP
    500, "Integer exceeds 64-bit range") is none."""
    current = current if isinstance(current, str) else ""
    return with_table_status(gui, lang, loaded, lambda: gr.update(
        choices=[(tr("hp.start_from_base", lang), "")] + finished_runs(gui), value=current), 1)


def _pairs(names: list[str]) -> list[list[str]]:
    return [names[i:i + 2] for i in range(0, len(names), 2)]
