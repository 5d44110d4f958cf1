"""Templates tab: starter templates as cards, and the model picker.

Choosing a card fills every setting from `core.presets.compose(template)` (model, recipe, dataset
format and the template's sample data), so a newcomer can press Start training right away.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from core import presets, trust
from core.errors import InputError
from core.models import resolve_model
from webui import fields
from webui.i18n import L, preset_text, said_in_all, tr
from webui.tabs.hyperparams_tab import describe_recipe, problems_markdown


@dataclass(frozen=True)
class TemplatesTab:
    names: list[str]               # template names, in card order
    cards: list[gr.Markdown]       # one per template (re-rendered when the language changes)
    buttons: dict[str, gr.Button]  # template name -> its "Use this template" button
    base_model: gr.Dropdown        # the TrainConfig `base_model` widget lives here
    custom_model: gr.Textbox
    model_info: gr.Markdown
    chosen: gr.Markdown            # "Template demo chosen. Next: ..."
    said: gr.Textbox               # that note in every language (JSON, hidden), for a language switch


def templates() -> list[presets.Preset]:
    """Templates in card order: the demo first (the newcomer's start), then by name."""
    items = [p for p in presets.all_presets() if p.kind == "template"]
    return sorted(items, key=lambda p: (p.name != "demo", p.name))


def model_choices() -> list[tuple[str, str]]:
    """(label, base_model value) for every model preset, smallest first."""
    models = sorted((p for p in presets.all_presets() if p.kind == "model"),
                    key=lambda p: p.data.get("params_billion", 0))
    out = []
    for p in models:
        size = p.data.get("params_billion", 0)
        # a number in every language ("0.1M" for the demo model, not the word "tiny")
        size_text = f"{size:g}B" if size >= 0.01 else f"{size * 1000:g}M"
        out.append((f"{p.name} · {p.data.get('family', '')} · {size_text}", p.data["base_model"]))
    return out


def template_card(p: presets.Preset, lang: str) -> str:
    """One card: what it is for, the model, the data format, time and memory it needs."""
    d = p.data

    def text(key):
        return preset_text(p.name, key, d[key], lang)
    return (f"### {text('use_case')}\n<span class='muted'>{p.name}</span>\n\n{text('description')}\n\n"
            f"- **{tr('tpl.model', lang)}:** {d['model']}\n"
            f"- **{tr('tpl.format', lang)}:** {d['dataset_format']}\n"
            f"- **{tr('tpl.time', lang)}:** {text('time_needed')}\n"
            f"- **{tr('tpl.memory', lang)}:** {text('memory_needed')}\n")


def render_cards(lang: str) -> list[str]:
    """Inputs: language. Outputs: every card's text."""
    return [template_card(p, lang) for p in templates()]


def apply_template(gui, name: str, lang: str, *current) -> list:
    """Inputs: template name, language, and optionally the settings now shown (fields.NAMES order).
    Outputs: every setting, recipe name, note (in every language, i18n.Said), what the model and the
    recipe are, and no selected dataset (the template's sample file is used). All in one answer (each
    separate event costs the page a round of its own); a setting that already has the template's value
    is skipped."""
    cfg = presets.compose(name)
    recipe = presets.get(name, "template").data["recipe"]
    note = said_in_all(lambda code: (
        f"✓ {tr('tpl.chosen', code)} **{name}**: {tr('tpl.filled', code)} (`{cfg['base_model']}`, "
        f"{tr('tpl.recipe', code)} `{recipe}`, {tr('tpl.format', code)} `{cfg['dataset_format']}`).\n\n"
        f"{tr('tpl.next', code)}"), lang)
    values = fields.changed_only(fields.config_values(cfg, fields.NAMES), current)
    return values + [recipe, note, describe_model(gui, cfg["base_model"], lang), describe_recipe(recipe, lang), ""]


def licence(p, lang: str) -> str:
    """A model's licence: its name as it is, its note (e.g. gated on the hub) in `lang`."""
    note = p.data.get("license_note")
    name = p.data.get("license", "?")
    return f"{name} ({preset_text(p.name, 'license_note', note, lang)})" if note else name


def describe_model(gui, base_model: str, lang: str) -> str:
    """Inputs: base_model, language. Outputs: a short description (preset facts, or where it comes from).
    A folder is looked at only inside the allowed folders (core.trust)."""
    base_model = base_model.strip() if isinstance(base_model, str) else ""  # the API may send a number, a list...
    if not base_model:
        return tr("tpl.no_model", lang)
    p = presets.model_for(base_model)
    if p is not None:
        d = p.data
        return (f"**{p.name}** — {preset_text(p.name, 'description', d.get('description', ''), lang)}\n\n"
                f"<span class='muted'>{tr('tpl.license', lang)}: {licence(p, lang)} · {tr('tpl.gpu_memory', lang)}: "
                f"{preset_text(p.name, 'vram_basis', d.get('vram_basis', ''), lang)}</span>")
    try:
        ref = resolve_model(trust.check_base_model(base_model, gui.ws, trust.BROWSER), gui.ws, builtin="path")
    except InputError as e:
        return problems_markdown(e.problems, lang)
    return f"**{base_model}** — {tr('tpl.local_folder' if ref.local else 'tpl.hub_model', lang)}"


def use_custom_model(gui, text: str, lang: str = "en"):
    """Inputs: the free model field, language. Outputs: the base_model widget and what that model is
    (both unchanged when the field is empty)."""
    text = (text or "").strip()
    return (gr.update(value=text), describe_model(gui, text, lang)) if text else (gr.skip(), gr.skip())


def build(gui) -> TemplatesTab:
    gr.Markdown("## " + L("tpl.title"))
    gr.Markdown(L("tpl.intro"), elem_classes=["muted"])
    items = templates()
    cards, buttons = [], {}
    with gr.Row(equal_height=True, elem_id="tpl-cards"):
        for p in items:
            with gr.Column(variant="panel", min_width=180, elem_classes=["card"]):
                cards.append(gr.Markdown(template_card(p, "en"), elem_id=f"tpl-card-{p.name}"))
                buttons[p.name] = gr.Button(L("tpl.use"), elem_id=f"tpl-{p.name}", size="md",
                                            variant="primary" if p.name == "demo" else "secondary")
    chosen = gr.Markdown(elem_id="tpl-chosen")
    said = gr.Textbox("", visible=False, label="said", elem_id="tpl-said")
    gr.Markdown("## " + L("tpl.model_title"))
    with gr.Row():
        base_model = fields.widget_for("base_model", model_choices=model_choices(), scale=3)
        custom_model = gr.Textbox(label=L("tpl.custom_model"), info=L("tpl.custom_model_help"),
                                  placeholder="Qwen/Qwen2.5-0.5B-Instruct", elem_id="tpl-custom-model", scale=2)
    model_info = gr.Markdown(describe_model(gui, fields.default_value("base_model"), "en"), elem_id="tpl-model-info")
    return TemplatesTab(names=[p.name for p in items], cards=cards, buttons=buttons, base_model=base_model,
                        custom_model=custom_model, model_info=model_info, chosen=chosen, said=said)
