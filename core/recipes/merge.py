"""Export: adapter + base model -> one ordinary Hugging Face model folder (XTuner's `convert merge`).

    python -m core.recipes.merge --adapter RUN/adapter --out EXPORTS/my-model [--dtype bf16|fp16]
        [--max-shard-size 5GB] [--result JOB_DIR/result.json]

`python app.py merge JOB_ID NAME` (and the Export tab) queue exactly this as a "merge" job.
What it does, in order:
1. Reload the base model UNQUANTIZED in bf16 (or fp16), on the GPU when there is one. Training
   may have used a 4-bit base, but merging into 4-bit weights would round the adapter away.
2. Add the adapter and fold it into the weights (PEFT merge_and_unload).
3. Write sharded safetensors, config, generation config, and the tokenizer with the chat template
   training used, into `<name>.partial/`; then `manifest.json` with the size and sha256 of every
   file; then rename the folder to `<name>/`. A folder without `.partial` is always complete.
4. Smoke test: load the export again with transformers and generate a reply to a short prompt.
   The result (result.json and the export's danlu_export.json) says whether that worked.
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

from core.models import resolve_model
from core.recipes.common import record_failure, write_json
from core.recipes.inference import (GenSettings, apply_chat_template_choice, check_adapter_dir, prompt_ids,
                                    read_adapter_info, stop_token_ids)
from core.rundir import RunDir
from core.workspace import fsync_dir, write_manifest

SMOKE_PROMPT = "Hello! Please introduce yourself in one sentence."


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", required=True, help="the run's adapter/ folder")
    ap.add_argument("--out", required=True, help="the export folder to create (must not exist)")
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16"))
    ap.add_argument("--max-shard-size", default="5GB", help="largest safetensors file, e.g. 2GB")
    ap.add_argument("--device", default="auto", help="auto (GPU when present), cpu, or cuda:N")
    ap.add_argument("--result", help="where to write result.json (default: next to the export)")
    ap.add_argument("--smoke-prompt", default=SMOKE_PROMPT)
    ap.add_argument("--no-smoke-test", action="store_true", help="skip reloading the export")
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


def _on_sigterm(signum, frame):
    # Cancel: unwind normally so the half-written <name>.partial/ folder is removed on the way out.
    raise Cancelled(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    out = Path(args.out).resolve()
    result_path = Path(args.result).resolve() if args.result else out.parent / f".{out.name}.result.json"
    progress = Progress(result_path.parent) if args.result else (lambda phase: None)
    try:
        result = merge(Path(args.adapter), out, args, progress)
    except BaseException as exc:
        if isinstance(exc, Cancelled) or (isinstance(exc, SystemExit) and exc.code in (0, None)):
            raise
        info = record_failure(result_path.parent, 0, exc)
        print(f"[danlu] merge failed: {info['reason']}: {info['message']}\n[danlu] hint: {info['hint']}",
              file=sys.stderr, flush=True)
        raise
    write_json(result_path, result)
    smoke = result["smoke_test"]
    if smoke["status"] == "failed":
        print(f"[danlu] the export was written but did not load back: {smoke['error']}", file=sys.stderr, flush=True)
        return 1
    return 0


class Progress:
    """progress.json for the supervisor's stall watchdog: the step moves at each phase of the merge."""

    def __init__(self, job_dir: Path):
        self.path, self.step = RunDir(job_dir).progress, 0

    def __call__(self, phase: str) -> None:
        self.step += 1
        write_json(self.path, dict(phase=phase, step=self.step, total_steps=5, time=time.time()))


def merge(adapter: Path, out: Path, args, progress=lambda phase: None) -> dict:
    t0 = time.time()
    adapter = check_adapter_dir(adapter)
    if out.exists():
        from core.errors import InputError, Problem
        raise InputError(problems=[Problem("name", f"{out} already exists", "choose another name or delete the old export")])
    info = read_adapter_info(adapter)
    trust = bool(info.get("trust_remote_code", False))
    ref = resolve_model(info.get("base_model", ""), builtin="require")
    device = torch.device("cuda", 0) if args.device == "auto" and torch.cuda.is_available() else \
        torch.device("cpu" if args.device == "auto" else args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float16
    # a fresh process: the peak-memory counter starts at zero (resetting it before CUDA is initialised
    # raises "Invalid device argument")
    rss = PeakRSS()
    print(f"[danlu] merging {adapter} into {info.get('base_model')} ({args.dtype}, unquantized, on {device})", flush=True)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    progress("loading")
    t_load = time.time()
    base = AutoModelForCausalLM.from_pretrained(ref.source, dtype=dtype, device_map={"": device}, use_safetensors=True,
                                                trust_remote_code=trust, local_files_only=ref.local)
    model = PeftModel.from_pretrained(base, str(adapter), is_trainable=False)
    model = model.merge_and_unload()
    t_merged = time.time()
    tok = AutoTokenizer.from_pretrained(str(adapter), trust_remote_code=trust, local_files_only=True)
    template = apply_chat_template_choice(tok, "chatml" if info.get("chat_template") == "chatml" else "auto")

    partial = out.parent / f"{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    progress("saving")
    try:
        model.generation_config.pad_token_id = tok.pad_token_id
        model.save_pretrained(partial, safe_serialization=True, max_shard_size=args.max_shard_size)
        tok.save_pretrained(partial)
        write_json(partial / "danlu_export.json", dict(
            base_model=info.get("base_model"), adapter=str(adapter), dtype=args.dtype, chat_template=template,
            trust_remote_code=trust, quantization_in_training=info.get("quantization"), created=time.time()))
        t_saved = time.time()
        peak_gpu = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        del model, base
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        progress("checksums")
        manifest = manifest_export(partial)
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a half-written export is of no use to anyone
        raise
    fsync_dir(out.parent)
    t_done = time.time()
    print(f"[danlu] export written: {out} ({len(manifest['files'])} files, {manifest['total_bytes'] / 2**20:.1f} MiB)", flush=True)

    smoke = dict(status="skipped")
    if not args.no_smoke_test:
        progress("smoke test")
        smoke = smoke_test(out, device, dtype, trust, args.smoke_prompt)
        print(f"[danlu] smoke test {smoke['status']}: " + (repr(smoke.get('reply', ''))[:200] if smoke["status"] == "passed"
                                                          else smoke.get("error", "")), flush=True)
    peak_rss = rss.stop()
    progress("done")
    result = dict(status="succeeded" if smoke["status"] != "failed" else "failed", export_dir=str(out),
                  base_model=info.get("base_model"), adapter=str(adapter), dtype=args.dtype, device=str(device),
                  files=len(manifest["files"]), total_bytes=manifest["total_bytes"], smoke_test=smoke,
                  timings_s=dict(load_and_merge=round(t_merged - t_load, 2), save=round(t_saved - t_merged, 2),
                                 manifest=round(t_done - t_saved, 2), total=round(time.time() - t0, 2)),
                  peak_gpu_mem_gib=round(peak_gpu, 3) if peak_gpu is not None else None,
                  peak_host_rss_gib=round(peak_rss / 2**30, 3))
    with open(out / "danlu_export.json", encoding="utf-8") as f:
        meta = json.load(f)
    meta["smoke_test"] = smoke  # not in the manifest: written after it, on purpose
    write_json(out / "danlu_export.json", meta)
    return result


def manifest_export(folder: Path) -> dict:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "danlu_export.json")
    for p in files:
        p.chmod(0o644)  # safetensors are written owner-only; an export is meant to be copied and shared
    return write_manifest(folder, files, total_bytes=sum(p.stat().st_size for p in files))


def smoke_test(out: Path, device, dtype, trust: bool, prompt: str) -> dict:
    """Load the export the way any user would (plain transformers) and generate a short reply."""
    t0 = time.time()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(out), trust_remote_code=trust, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(out), dtype=dtype if device.type == "cuda" else torch.float32,
                                                     device_map={"": device}, use_safetensors=True,
                                                     trust_remote_code=trust, local_files_only=True)
        ids = prompt_ids(tok, [{"role": "user", "content": prompt}])
        s = GenSettings(temperature=0.0, max_new_tokens=32, repetition_penalty=1.0)
        with torch.inference_mode():
            gen = model.generate(input_ids=torch.tensor([ids], device=device), attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
                                 max_new_tokens=s.max_new_tokens, do_sample=False, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=stop_token_ids(tok, model), pad_token_id=tok.pad_token_id)
        new = gen[0][len(ids):]
        reply = tok.decode(new, skip_special_tokens=True)
        del model
        gc.collect()
        if len(new) == 0:
            return dict(status="failed", error="the model generated no tokens", prompt=prompt, seconds=round(time.time() - t0, 2))
        return dict(status="passed", prompt=prompt, reply=reply, new_tokens=int(len(new)), seconds=round(time.time() - t0, 2))
    except Exception as e:  # the export exists; the job reports that it does not load
        return dict(status="failed", error=f"{type(e).__name__}: {e}"[:1000], prompt=prompt, seconds=round(time.time() - t0, 2))


if __name__ == "__main__":
    sys.exit(main())
