"""The export's steps after the merge (core/recipes/merge.py runs them in order): the LoRA copy, the
tokenizer files llama.cpp's converter reads, the GGUF files and their checks, the Ollama Modelfile and
the model card. Each returns the check that manifest.json records for its format:
{kind, status: passed|failed, files: [paths inside the export], summary, error, ...details}.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from core import gguf_tools, ollama
from core.demo_model import record_special_token_behaviour
from core.errors import DanluError
from core.messages import Msg, keep, recorded
from core.export_formats import gguf_file, gguf_types, ollama_target
from core.model_card import model_card
from core.engine import gguf as G

LORA_FILES = ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
              "chat_template.jinja", "special_tokens_map.json", "tokenizer.model")


def install_tools(progress) -> None:
    """The one-time llama.cpp build, inside the export job (its output goes to the job's log)."""
    progress("installing llama.cpp (once)")
    print(f"[danlu] {gguf_tools.ONE_TIME_NOTE}", flush=True)
    try:
        gguf_tools.install(lambda line: print(line, flush=True))
    except RuntimeError as e:
        raise DanluError(Msg("export.install_failed", error=str(e)), Msg("export.install_failed.hint")) from None


def copy_lora(adapter: Path, dest: Path) -> Path:
    """The PEFT adapter folder as training wrote it (Danlu's own notes and PEFT's stub card left out)."""
    dest.mkdir(parents=True)
    for name in LORA_FILES:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, dest / name)
    if not (dest / "adapter_config.json").is_file():
        raise DanluError(Msg("export.no_adapter_config", path=str(adapter)), Msg("export.no_adapter_config.hint"))
    return dest


def lora_check(lora_dir: Path) -> dict:
    """The merge loaded this copy with PeftModel.from_pretrained; say so and list its files."""
    cfg = json.loads((lora_dir / "adapter_config.json").read_text())
    files = sorted(f"lora/{p.name}" for p in lora_dir.iterdir() if p.is_file())
    return dict(kind="lora", status="passed", files=files, rank=cfg.get("r"), alpha=cfg.get("lora_alpha"),
                target_modules=cfg.get("target_modules"), **keep("summary", Msg("export.lora_check", rank=cfg.get("r"))))


def complete_tokenizer_files(tok, merged_dir: Path, ref) -> None:
    """What llama.cpp's converter needs beyond what transformers saves: the SentencePiece model (transformers 5
    does not write tokenizer.model back; without it a Llama-family vocabulary converts with wrong scores) and
    whether the tokenizer adds BOS/EOS (core.demo_model.record_special_token_behaviour says why)."""
    if not (merged_dir / "tokenizer.model").is_file():
        source = _base_file(ref, "tokenizer.model")
        if source is not None:
            shutil.copy2(source, merged_dir / "tokenizer.model")
    record_special_token_behaviour(tok, merged_dir)


def _base_file(ref, name: str) -> Path | None:
    if Path(ref.source).is_dir():
        p = Path(ref.source) / name
        return p if p.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
        hit = try_to_load_from_cache(ref.source, name)
        return Path(hit) if isinstance(hit, str) else None
    except Exception:  # an offline cache without that file: the converter falls back to tokenizer.json
        return None


def gguf_formats(merged_dir: Path, partial: Path, name: str, formats: list[str], smoke: dict, merged: dict, args,
                 progress) -> dict:
    """Convert once to full precision, quantise to each requested type, then load and question each file."""
    types = gguf_types(formats)
    work = partial / ".work"
    work.mkdir(exist_ok=True)
    threads = os.cpu_count() or 2
    base_type = "bf16" if args.dtype == "bf16" else "f16"  # the merged weights' own precision: no rounding
    base_file = (partial if base_type in types else work) / gguf_file(name, base_type)
    progress("converting to GGUF")
    timings = {"convert": round(G.convert(merged_dir, base_file, base_type), 2)}
    for t in types:
        progress(f"quantising to {t.upper()}")
        if t != base_type:
            timings[t] = round(G.quantize(base_file, partial / gguf_file(name, t), t, threads), 2)
    progress("checking the GGUF files")
    checks = {}
    for t in types:
        path = partial / gguf_file(name, t)
        if smoke.get("status") != "passed":
            checks[t] = dict(kind="gguf", status="failed", files=[path.name], **keep("error", Msg("export.no_reference")))
            continue
        c = G.verify(path, t, smoke["prompt_ids"], smoke["prompt_text"], smoke["tokens"], merged["stop_ids"], work, threads)
        c.update(kind="gguf", files=[path.name], size=path.stat().st_size, seconds_to_make=timings.get(t, timings["convert"]),
                 **keep("summary", _gguf_summary(c)),
                 peak_child_rss_gib={k: round(v / 2**30, 3) for k, v in G.CHILD_PEAK_RSS.items()
                                     if t.upper() in k or k == "llama.cpp's converter"})
        print(f"[danlu] {t.upper()}: {c['status']}: {c['summary']}", flush=True)
        checks[t] = c
    return checks


def _tensor_types(types) -> str:
    """'F32: 5, Q5_0: 13' rather than Python's {'F32': 5, 'Q5_0': 13}, which the page showed as it is
    in every language (a browser walk in Japanese)."""
    return ", ".join(f"{k}: {v}" for k, v in types.items()) if isinstance(types, dict) else str(types)


def _gguf_summary(c: dict) -> Msg | None:
    if c.get("status") == "failed" and "tokens" not in c:
        return recorded(c, "error")
    params = dict(reply=repr(c.get("reply", "")[:50]), agree=c["agreeing_tokens"], compared=c["compared_tokens"],
                  forced_agree=c["forced_agreeing_tokens"], forced=c["forced_tokens"], types=_tensor_types(c.get("tensor_types")))
    note = recorded(c, "note")
    return Msg("export.gguf_check_note", note=note, **params) if note else Msg("export.gguf_check", **params)


def ollama_format(partial: Path, name: str, formats: list[str], tok, system: str, checks: dict) -> dict:
    """Modelfile: FROM the preferred GGUF, TEMPLATE measured from the chat template, stop tokens, SYSTEM."""
    target = ollama_target(formats)
    render = lambda msgs, gen: tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)  # noqa: E731
    add_bos = bool(json.loads((partial / ".merged" / "tokenizer_config.json").read_text()
                              if (partial / ".merged").is_dir() else
                              (partial / "tokenizer_config.json").read_text()).get("add_bos_token"))
    specials = [str(t) for t in getattr(tok, "all_special_tokens", [])] + list(tok.get_added_vocab())
    stops = sorted({tok.convert_ids_to_tokens(i) for i in _stop_ids(tok)})
    parts, problem = None, None
    for with_system in (True, False):  # some templates (Mistral, Gemma) have no system role
        try:
            parts = ollama.measure_template(render, bos_token=tok.bos_token, strip_bos=add_bos, specials=specials,
                                            with_system=with_system)
            problem = ollama.check_parts(parts, render, system=system)
        except ollama.TemplateError as e:
            parts, problem = None, e.msg
        if parts is not None and problem is None:
            break
    if parts is None:
        return dict(kind="ollama", status="failed", files=[], **keep("error", Msg("export.ollama_failed", problem=problem)))
    text = ollama.modelfile(f"./{gguf_file(name, target)}", parts, stops=stops, system=system)
    (partial / "Modelfile").write_text(text, encoding="utf-8")
    ok = problem is None and checks.get(target, {}).get("status") == "passed"
    return dict(kind="ollama", status="passed" if ok else "failed", files=["Modelfile"], gguf=gguf_file(name, target),
                stops=stops, system=system, system_role="system" in parts.prefix, stripped_bos=parts.stripped_bos,
                **keep("error", problem or (None if ok else Msg("export.ollama_gguf_failed", type=target))),
                **keep("summary", Msg("export.ollama_check") if problem is None else problem))


def _stop_ids(tok) -> list[int]:
    from core.engine.inference import stop_token_ids
    return [i for i in stop_token_ids(tok) if i != tok.pad_token_id or tok.pad_token_id == tok.eos_token_id]


def write_card(partial: Path, adapter: Path, name: str, info: dict, formats: dict, system: str) -> None:
    files = {p.relative_to(partial).as_posix(): dict(size=p.stat().st_size) for p in partial.rglob("*") if p.is_file()}
    text = model_card(adapter.parent, export_name=name, base_model=info.get("base_model", ""),
                      formats=formats, files=files, system_prompt=system, created=time.time())
    (partial / "README.md").write_text(text, encoding="utf-8")
