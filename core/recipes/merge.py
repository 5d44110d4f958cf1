"""Export: adapter + base model -> the files people run (XTuner's `convert merge`, and more).

    python -m core.recipes.merge --adapter RUN/adapter --out EXPORTS/my-model [--dtype bf16|fp16]
        [--max-shard-size 5GB] [--formats safetensors,q4_k_m,q8_0,f16,lora,ollama] [--system TEXT]
        [--result JOB_DIR/result.json]

`python app.py merge JOB_ID NAME [--format ...]` (and the Export tab) queue exactly this as a "merge" job.
What it does, in order, all inside `<name>.partial/` (renamed to `<name>/` only at the very end, so a
folder without `.partial` is always complete; Stop or a failure removes the partial folder):
1. `lora`: copy the adapter into `lora/` (the merge below loads it from there: proof that
   `PeftModel.from_pretrained` reads the exported copy).
2. Reload the base model UNQUANTIZED in bf16 (or fp16), on the GPU when there is one (merging into
   4-bit weights would round the adapter away; a base saved in 4 or 8 bits is dequantized, to the
   values training used), add the adapter and fold it in (merge_and_unload).
3. Write sharded safetensors, config and the tokenizer with the chat template training used: into the
   folder itself for `safetensors`, else into a scratch `.merged/` used by the next steps.
4. Check with transformers: load the merged folder the way any user would and answer a question
   greedily; those tokens are the reference for the GGUF checks.
5. GGUF types (core/engine/gguf.py): llama.cpp's converter writes one full-precision GGUF, llama.cpp's
   quantiser makes each requested type from it; each file is loaded with llama.cpp and asked the same
   question (F16/BF16/Q8_0 must repeat transformers' first 16 tokens).
6. `ollama`: a Modelfile (FROM the GGUF, the chat template in Ollama's syntax, stop tokens, system
   prompt), checked by rendering two-turn conversations both ways (core/ollama.py).
7. README.md (the model card, core/model_card.py) and manifest.json (size, sha256 and format of
   every file, and each format's check).
Exit code 0 only when every requested format was written and its check passed.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil
import torch

from core.export_formats import FORMATS, gguf_types, parse_formats
from core.messages import Msg, keep, recorded, verbatim
from core.models import resolve_model
from core.engine import export_steps as steps
from core.engine.common import describe_quantization, saved_quantization, write_json
from core.engine.faults import fault
from core.engine.gguf import CHECK_TOKENS, CHILD_PEAK_RSS, stop_children
from core.engine.recipe import run_recipe
from core.engine.inference import (GenSettings, apply_chat_template_choice, check_adapter_dir, prompt_ids,
                                    read_adapter_info, render, stop_token_ids)
from core.rundir import RunDir, partial_link_problem
from core.workspace import MANIFEST, folder_bytes, fsync_dir, sha256_file

SMOKE_PROMPT = "Hello! Please introduce yourself in one sentence."
SCRATCH = (".merged", ".work")  # inside <name>.partial/, removed before the rename


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", required=True, help="the run's adapter/ folder")
    ap.add_argument("--out", required=True, help="the export folder to create (must not exist)")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--max-shard-size", default="5GB", help="largest safetensors file, e.g. 2GB")
    ap.add_argument("--formats", default="safetensors", help="comma list: " + ",".join(FORMATS))
    ap.add_argument("--system", default="", help="system prompt for the Ollama Modelfile and the model card")
    ap.add_argument("--device", default="auto", help="auto (GPU when present), cpu, or cuda:N")
    ap.add_argument("--result", help="where to write result.json (default: next to the export)")
    ap.add_argument("--smoke-prompt", default=SMOKE_PROMPT)
    ap.add_argument("--no-smoke-test", action="store_true", help="skip reloading the export (safetensors only)")
    return ap.parse_args(argv)


class PeakRSS:
    """Highest resident memory of this process, sampled in a thread (merging can spike host RAM)."""

    def __init__(self, every: float = 0.05):
        import threading
        self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._t.start()

    def _run(self, every):
        p = psutil.Process()
        while not self._stop.wait(every):
            self.peak = max(self.peak, p.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)
        return self.peak


class Cancelled(SystemExit):
    pass


STOP = {"signum": None}  # a Stop asked for, kept until the export has unwound


def _on_sigterm(signum, frame):
    # Cancel: unwind normally so the half-written <name>.partial/ folder is removed on the way out.
    # Remembered first: a signal that lands while Python runs a finaliser (regex's Group.__del__ during
    # the merge) has its exception printed and dropped, and the export went on to Succeeded.
    STOP["signum"] = signum
    raise Cancelled(128 + signum)


def stop_if_asked() -> None:
    """Raise the Stop a finaliser swallowed: at each phase and before the partial folder is renamed."""
    if STOP["signum"] is not None:
        raise Cancelled(128 + STOP["signum"])


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    out = Path(args.out).resolve()
    result_path = Path(args.result).resolve() if args.result else out.parent / f".{out.name}.result.json"
    progress = Progress(result_path.parent) if args.result else Progress(None)
    # stop_children: a converter or quantiser still running must not outlive the export
    result = run_recipe(lambda ctx: export(Path(args.adapter), out, args, progress), result_path.parent,
                        distributed=False, who="export", cleanup=stop_children, passthrough=(Cancelled,),
                        work="export")
    write_json(result_path, result)
    bad = {f: c for f, c in result["formats"].items() if c.get("status") != "passed"}
    for f, c in bad.items():
        print(f"[danlu] {f}: written but its check {c.get('status')}: {c.get('error', '')}", file=sys.stderr, flush=True)
    return 1 if bad else 0


class Progress:
    """progress.json for the GUI and the supervisor's stall watchdog: the step moves at each phase."""

    def __init__(self, job_dir: Path | None):
        self.path, self.step, self.total = (RunDir(job_dir).progress if job_dir else None), 0, 5

    def __call__(self, phase: str) -> None:
        stop_if_asked()
        self.step += 1
        self.total = max(self.total, self.step)
        print(f"[danlu] step {self.step}/{self.total}: {phase}", flush=True)
        if self.path:
            write_json(self.path, dict(phase=phase, step=self.step, total_steps=self.total, time=time.time()))
        if fault("export_hang", self.step):  # tests: DANLU_FAULT=export_hang@STEP stops here until Stop
            print(f"[danlu] fault injection: hanging at step {self.step} ({phase})", flush=True)
            while True:
                time.sleep(0.2)


def plan(formats: list[str], tools_ready: bool) -> list[str]:
    """The export's steps in order, for the progress bar."""
    types = gguf_types(formats)
    out = [] if tools_ready or not types else ["installing llama.cpp (once)"]
    out += ["loading and merging", "saving", "checking with transformers"]
    if types:
        out += ["converting to GGUF"] + [f"quantising to {t.upper()}" for t in types] + ["checking the GGUF files"]
    if "ollama" in formats:
        out.append("writing the Modelfile")
    return out + ["model card and checksums"]


def export(adapter: Path, out: Path, args, progress) -> dict:
    t0 = time.time()
    adapter = check_adapter_dir(adapter)
    formats = parse_formats(args.formats)
    if out.exists():
        from core.errors import InputError, Problem
        from core.messages import Msg
        raise InputError(problems=[Problem("name", Msg("export.out_exists", path=str(out)), Msg("export.out_exists.hint"))])
    if (link := partial_link_problem(out)) is not None:  # made after the job was queued: refused there (core.export)
        from core.errors import InputError
        raise InputError(problems=[link])
    info = read_adapter_info(adapter)
    from core import gguf_tools
    tools_ready = gguf_tools.status()["ready"]
    progress.total = len(plan(formats, tools_ready))
    print(f"[danlu] export {out.name}: {', '.join(formats)}; steps: {'; '.join(plan(formats, tools_ready))}", flush=True)
    if gguf_types(formats) and not tools_ready:
        steps.install_tools(progress)
    partial = out.parent / f"{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        result = _export_into(partial, adapter, out.name, formats, info, args, progress)
        for name in SCRATCH:
            shutil.rmtree(partial / name, ignore_errors=True)
        progress("model card and checksums")
        steps.write_card(partial, adapter, out.name, info, result["formats"], args.system)
        manifest = write_manifest(partial, result["formats"])
        stop_if_asked()  # the last moment a Stop can keep the export from appearing
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a half-written export is of no use to anyone
        raise
    fsync_dir(out.parent)
    meta_path = out / "danlu_export.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    meta.update(formats=formats, checks={f: c.get("status") for f, c in result["formats"].items()})
    write_json(meta_path, meta)  # not in the manifest: written after it, on purpose
    # the folder's size on disk, as the Export tab's table lists it (folder_bytes): the manifest's total_bytes
    # leaves out manifest.json and danlu_export.json, and the same export was said to be 307 KB and 311 KB
    size = folder_bytes(out)
    result.update(export_dir=str(out), files=len(manifest["files"]), total_bytes=size)
    result["timings_s"]["total"] = round(time.time() - t0, 2)
    print(f"[danlu] export written: {out} ({len(manifest['files'])} files, {size / 2**20:.1f} MiB)", flush=True)
    return result


def _export_into(partial: Path, adapter: Path, name: str, formats: list[str], info: dict, args, progress) -> dict:
    checks: dict = {}
    source = adapter
    if "lora" in formats:
        source = steps.copy_lora(adapter, partial / "lora")  # merged from the copy: proof that it loads
    merged_dir = partial if "safetensors" in formats else partial / ".merged"
    rss = PeakRSS()
    merged = merge_model(source, merged_dir, info, args, progress)
    if "lora" in formats:
        checks["lora"] = steps.lora_check(partial / "lora")
    progress("checking with transformers")
    smoke = dict(status="skipped")
    if not (args.no_smoke_test and formats == ["safetensors"]):
        smoke = smoke_test(merged_dir, merged["device"], merged["dtype"], merged["trust"], args.smoke_prompt)
        print(f"[danlu] transformers check {smoke['status']}: " + (repr(smoke.get('reply', ''))[:200] if smoke["status"] == "passed"
                                                                    else smoke.get("error", "")), flush=True)
    if "safetensors" in formats:
        files = sorted(p.name for p in partial.iterdir() if p.is_file() and p.name != "danlu_export.json")
        checks["safetensors"] = dict(kind="safetensors", status="passed" if smoke["status"] != "failed" else "failed",
                                     files=files, **keep("error", recorded(smoke, "error")),
                                     **keep("summary", Msg("export.hf_check", reply=repr(smoke.get("reply", "")[:60]))))
    timings = dict(merged["timings"])
    if gguf_types(formats):
        t = time.time()
        checks.update(steps.gguf_formats(merged_dir, partial, name, formats, smoke, merged, args, progress))
        timings["gguf"] = round(time.time() - t, 2)
    if "ollama" in formats:
        progress("writing the Modelfile")
        checks["ollama"] = steps.ollama_format(partial, name, formats, merged["tok"], args.system, checks)
    meta = json.loads((merged_dir / "danlu_export.json").read_text())
    meta["smoke_test"] = smoke
    write_json(partial / "danlu_export.json", meta)
    peak_rss = rss.stop()
    return dict(status="succeeded" if all(c.get("status") == "passed" for c in checks.values()) else "failed",
                base_model=info.get("base_model"), adapter=str(adapter), dtype=args.dtype, device=str(merged["device"]),
                smoke_test=smoke, formats={f: checks[f] for f in formats if f in checks}, timings_s=timings,
                peak_gpu_mem_gib=merged["peak_gpu_gib"], peak_host_rss_gib=round(peak_rss / 2**30, 3),
                peak_child_rss_gib={k: round(v / 2**30, 3) for k, v in CHILD_PEAK_RSS.items()})


def merge_model(adapter: Path, merged_dir: Path, info: dict, args, progress) -> dict:
    """Base (unquantized) + adapter, folded; written to merged_dir. Returns the facts the next steps need."""
    trust = bool(info.get("trust_remote_code", False))
    ref = resolve_model(info.get("base_model", ""), builtin="require")
    device = torch.device("cuda", 0) if args.device == "auto" and torch.cuda.is_available() else \
        torch.device("cpu" if args.device == "auto" else args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    # a fresh process: the peak-memory counter starts at zero (resetting it before CUDA is initialised
    # raises "Invalid device argument")
    print(f"[danlu] merging {adapter} into {info.get('base_model')} ({args.dtype}, unquantized, on {device})", flush=True)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    progress("loading and merging")
    t_load = time.time()
    saved = saved_quantization(ref.source, ref.local)
    base = AutoModelForCausalLM.from_pretrained(ref.source, dtype=dtype, device_map={"": device}, use_safetensors=True,
                                                trust_remote_code=trust, local_files_only=ref.local)
    if saved is not None:
        # a checkpoint saved quantized loads quantized whatever `dtype` asks; its 4-bit layers can take
        # no adapter exactly and cannot be written as a plain model (transformers raised
        # NotImplementedError): dequantized first, to the very values training computed with
        print(f"[danlu] {ref.source} is saved quantized ({describe_quantization(saved)}): dequantized to "
              f"{args.dtype} before the merge", flush=True)
        base = base.dequantize()
        # transformers before 5.24 (5.17 on the GPU machines) keeps the load's 4-bit weight conversions
        # after dequantize(), and save_pretrained then fails reverting them (NotImplementedError);
        # newer versions drop them here themselves
        if hasattr(base, "_weight_conversions"):
            del base._weight_conversions
    model = PeftModel.from_pretrained(base, str(adapter), is_trainable=False).merge_and_unload()
    t_merged = time.time()
    tok = AutoTokenizer.from_pretrained(str(adapter), trust_remote_code=trust, local_files_only=True)
    template = apply_chat_template_choice(tok, "chatml" if info.get("chat_template") == "chatml" else "auto")
    progress("saving")
    merged_dir.mkdir(parents=True, exist_ok=True)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(merged_dir, safe_serialization=True, max_shard_size=args.max_shard_size)
    tok.save_pretrained(merged_dir)
    steps.complete_tokenizer_files(tok, merged_dir, ref)
    write_json(merged_dir / "danlu_export.json", dict(
        base_model=info.get("base_model"), adapter=str(adapter), dtype=args.dtype, chat_template=template,
        trust_remote_code=trust, quantization_in_training=info.get("quantization"),
        base_saved_quantized=describe_quantization(saved) if saved else None, created=time.time()))
    stops = stop_token_ids(tok, model)
    peak_gpu = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    del model, base
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return dict(tok=tok, device=device, dtype=dtype, trust=trust, stop_ids=stops, ref=ref,
                peak_gpu_gib=round(peak_gpu, 3) if peak_gpu is not None else None,
                timings=dict(load_and_merge=round(t_merged - t_load, 2), save=round(time.time() - t_merged, 2)))


def write_manifest(folder: Path, formats: dict) -> dict:
    """manifest.json: size, sha256 and format of every file (sub-folders included), and each format's check."""
    owner = {rel: f for f, c in formats.items() for rel in c.get("files", [])}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ("danlu_export.json", MANIFEST))
    for p in files:
        p.chmod(0o644)  # safetensors are written owner-only; an export is meant to be copied and shared
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    entries = {}
    for p in files:
        rel = p.relative_to(folder).as_posix()
        fmt = owner.get(rel) or ("lora" if rel.startswith("lora/") else "model card" if rel == "README.md" else "safetensors")
        entries[rel] = dict(size=p.stat().st_size, sha256=sha256_file(p), format=fmt)
    manifest = dict(files=entries, total_bytes=sum(v["size"] for v in entries.values()),
                    formats={f: {k: v for k, v in c.items() if k not in ("tok",)} for f, c in formats.items()})
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    for d in {p.parent for p in files} | {folder}:
        fsync_dir(d)
    return manifest


def _check_dtype(folder: Path, device, dtype):
    """float32 for the check (llama.cpp computes in float32 too, so the comparison is of the weights): always on
    a CPU; on a GPU when its free memory holds the weights at 4 bytes each with room to spare."""
    if device.type != "cuda":
        return torch.float32
    weights = sum(p.stat().st_size for p in Path(folder).glob("*.safetensors"))  # 2 bytes per weight (bf16/fp16)
    free, _ = torch.cuda.mem_get_info(device)
    return torch.float32 if free > weights * 2 * 1.3 else dtype


def greedy_tokens(model, ids: list[int], n: int, device) -> list[int]:
    """The n highest-logit next tokens, one at a time, never stopping early (plain argmax: nothing of
    generate()'s stopping or processing rules in the way)."""
    cur = torch.tensor([ids], device=device)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(n):
            t = int(model(input_ids=cur).logits[0, -1].argmax())
            out.append(t)
            cur = torch.cat([cur, torch.tensor([[t]], device=device)], dim=1)
    return out


def smoke_test(out: Path, device, dtype, trust: bool, prompt: str) -> dict:
    """Load the export the way any user would (plain transformers) and answer greedily. The prompt's ids and
    the answer's token ids are the reference the GGUF files are compared with."""
    t0 = time.time()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(out), trust_remote_code=trust, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(out), dtype=_check_dtype(out, device, dtype),
                                                     device_map={"": device}, use_safetensors=True,
                                                     trust_remote_code=trust, local_files_only=True)
        messages = [{"role": "user", "content": prompt}]
        text, ids = render(tok, messages), prompt_ids(tok, messages)
        s = GenSettings(temperature=0.0, max_new_tokens=32, repetition_penalty=1.0)
        with torch.inference_mode():
            gen = model.generate(input_ids=torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
                                 max_new_tokens=s.max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=stop_token_ids(tok, model), pad_token_id=tok.pad_token_id)
        new = gen[0][len(ids):]
        reply = tok.decode(new, skip_special_tokens=True)
        # the GGUF checks compare the first CHECK_TOKENS greedy tokens; a short answer ends early, so this
        # reference runs on past the end-of-turn token (the GGUF side does the same)
        ref = greedy_tokens(model, ids, CHECK_TOKENS, device)
        compute = str(next(model.parameters()).dtype).replace("torch.", "")
        del model
        gc.collect()
        if len(new) == 0:
            return dict(status="failed", **keep("error", Msg("export.no_tokens")), prompt=prompt,
                        seconds=round(time.time() - t0, 2))
        return dict(status="passed", prompt=prompt, reply=reply, new_tokens=int(len(new)), seconds=round(time.time() - t0, 2),
                    prompt_text=text, prompt_ids=[int(i) for i in ids], tokens=[int(t) for t in ref], compute_dtype=compute)
    except Exception as e:  # the export exists; the job reports that it does not load
        return dict(status="failed", **keep("error", verbatim(f"{type(e).__name__}: {e}"[:1000])), prompt=prompt,
                    seconds=round(time.time() - t0, 2))


if __name__ == "__main__":
    sys.exit(main())
