"""GPU benchmark for export and chat: merge a QLoRA adapter into an 8B-shaped model, and compare chat
generation through Danlu's chat path with plain `model.generate` on the same model, same prompt.

    # on the GPU machine (no network): `bash bench/prepare.sh` here first, run with carry [".site"]
    PYTHONPATH=$PWD/.site python3 bench/gpu_merge_chat.py --out $OUT/merge_chat.json   # 1 GPU: 8B shape
    python bench/gpu_merge_chat.py --out results.json              # where peft/bitsandbytes are installed
    python bench/gpu_merge_chat.py --out r.json --phase merge      # only (a)-(c); --phase chat: only (d)
    python bench/gpu_merge_chat.py --out r.json --tiny             # a tiny shape, runs on a CPU in ~1 min

(a) builds a random-initialised Llama-3.1-8B-shaped model (hidden 4096, 32 layers, intermediate
    14336, 32 heads / 8 KV heads, vocab 128256) in bf16 with a small local BPE tokenizer and ChatML,
    and saves it (safetensors) under --workdir; reused when it is already there;
(b) adds a random LoRA (r 16, alpha 32, every linear layer) with PEFT and saves it the way the
    training recipe does (adapter_model.safetensors, tokenizer, danlu.json);
(c) runs `python -m core.recipes.merge` on it as the export job would, and records wall time, the
    recipe's own peak GPU memory (torch max_memory_allocated), the peak GPU memory nvidia-smi saw
    (CUDA context included) and the peak host RSS, and the smoke-test reply;
(d) loads base + adapter the way the chat worker does (nf4 4-bit on CUDA; fp32 on CPU) and times,
    on one prompt with a fixed answer length (greedy, min_new_tokens = max_new_tokens):
      plain    - `model.generate` directly (TTFT = a 1-token generate; tokens/s over the full answer)
      worker   - core.engine.inference.stream_generate, the chat worker's own decode loop (no thread)
      engine   - core.chat.ChatEngine: a real worker process over its socket (loads its own copy)
    Medians over --repeats runs after one warm-up each, interleaved so drift hits all alike.
Prints a table and writes everything to --out as JSON.

Expected on one H100: (a) about 1-2 min the first time (16 GB written), (c) 2-4 min, (d) 2-4 min;
under a 10-minute command limit run `--phase merge` and then `--phase chat` (the model is reused).
Needs about 35 GB of free disk (base + export) for the 8B shape; the export is deleted afterwards
unless --keep-export.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHAPES = {
    "8b": dict(hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0, max_position_embeddings=131072),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, max_position_embeddings=4096),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="write the results here (JSON)")
    ap.add_argument("--tiny", action="store_true", help="a tiny shape (CPU test of the script itself)")
    ap.add_argument("--workdir", help="where the model, adapter and export go (default /tmp/danlu-bench-<shape>)")
    ap.add_argument("--phase", choices=("all", "merge", "chat"), default="all")
    ap.add_argument("--prompt-words", type=int, default=200, help="length of the user message, in words")
    ap.add_argument("--new-tokens", type=int, default=128, help="answer length (forced)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-engine", action="store_true", help="skip the separate-process ChatEngine measurement")
    ap.add_argument("--keep-export", action="store_true")
    return ap.parse_args(argv)


# ---- (a) model + tokenizer ------------------------------------------------------------------------
def build_base(base: Path, shape: str) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from core.demo_model import build as build_demo_model
    if (base / "config.json").exists() and any(base.glob("*.safetensors")):
        return dict(built=False, seconds=0.0)
    t0 = time.time()
    tmp_tok = base.parent / ".tok"
    shutil.rmtree(tmp_tok, ignore_errors=True)
    build_demo_model(tmp_tok)  # its tokenizer: SentencePiece BPE with ChatML; ids stay far below the 8B vocab
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tmp_tok)
    cfg = LlamaConfig(**SHAPES[shape], bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=False, initializer_range=0.02)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(dev):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(prev)
    model.generation_config.pad_token_id = tok.pad_token_id
    partial = base.parent / f".{base.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True, max_shard_size="5GB")
    tok.save_pretrained(partial)
    for name in ("tokenizer.model", "tokenizer_config.json"):  # what llama.cpp's converter reads (GGUF bench)
        shutil.copy2(tmp_tok / name, partial / name)
    shutil.rmtree(tmp_tok, ignore_errors=True)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    if dev == "cuda":
        torch.cuda.empty_cache()
    os.replace(partial, base)
    return dict(built=True, seconds=round(time.time() - t0, 1), params=n_params)


# ---- (b) a random LoRA adapter, saved like the training recipe saves it ------------------------
def build_adapter(base: Path, adapter: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if (adapter / "adapter_model.safetensors").exists():
        return dict(built=False)
    t0 = time.time()
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16, device_map={"": dev})
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:  # B starts at zero (a no-op adapter); make the merge do real work
                p.normal_(0.0, 0.01)
    partial = adapter.parent / f".{adapter.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(partial)
    from core.rundir import adapter_info_path
    adapter_info_path(partial).write_text(json.dumps(dict(base_model=str(base), quantization="4bit",
                                                          chat_template="auto", trust_remote_code=False)))
    n_lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    del model
    if dev == "cuda":
        torch.cuda.empty_cache()
    os.replace(partial, adapter)
    return dict(built=True, seconds=round(time.time() - t0, 1), lora_params=n_lora)


# ---- (c) the merge recipe, as the export job runs it -----------------------------------------------
class SmiPeak:
    """Peak GPU memory in use as nvidia-smi reports it (includes every process's CUDA context)."""

    def __init__(self):
        self.peak_mib = None
        self.exe = shutil.which("nvidia-smi")
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        if self.exe:
            self._t.start()

    def _run(self):
        while not self._stop.wait(0.2):
            try:
                out = subprocess.run([self.exe, "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                                     capture_output=True, text=True, timeout=5).stdout.strip()
                self.peak_mib = max(self.peak_mib or 0, int(out.splitlines()[0]))
            except (subprocess.SubprocessError, OSError, ValueError, IndexError):
                pass

    def stop(self):
        self._stop.set()
        if self._t.is_alive():
            self._t.join()
        return self.peak_mib


def run_merge(adapter: Path, export: Path, workdir: Path) -> dict:
    shutil.rmtree(export, ignore_errors=True)
    result_path = workdir / "merge_result.json"
    result_path.unlink(missing_ok=True)
    log_path = workdir / "merge.log"
    from core.workspace import python_path
    env = dict(os.environ, PYTHONPATH=python_path(), PYTHONUNBUFFERED="1")  # keeps a carried .site on the path
    smi = SmiPeak()
    t0 = time.time()
    with open(log_path, "wb") as log:
        rc = subprocess.run([sys.executable, "-m", "core.recipes.merge", "--adapter", str(adapter), "--out", str(export),
                             "--result", str(result_path)], cwd=str(REPO), env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.time() - t0
    smi_peak = smi.stop()
    res = json.loads(result_path.read_text()) if result_path.exists() else {}
    return dict(returncode=rc, wall_s=round(wall, 2), recipe=res, nvidia_smi_peak_mib=smi_peak,
                log_tail=log_path.read_text(errors="replace")[-1500:] if rc else "")


# ---- (d) chat: the worker's generation path versus plain generate ----------------------------------
def prompt_text(words: int) -> str:
    vocab = ("furnace fire copper jade pill heat hours colour burns keeper bamboo pine ginger clay iron silver "
             "gold tin bronze flame mint answer question").split()
    return "Please summarise: " + " ".join(vocab[(i * 7) % len(vocab)] for i in range(words))


def sync():
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_plain(model, tok, ids, s) -> dict:
    import torch
    from core.engine.inference import gen_kwargs, model_device
    dev = model_device(model)
    x = torch.tensor([ids], device=dev)
    mask = torch.ones_like(x)
    kw = gen_kwargs(tok, model, s)
    one = dict(kw, max_new_tokens=1, min_new_tokens=1)
    with torch.inference_mode():
        sync()
        t0 = time.perf_counter()
        model.generate(input_ids=x, attention_mask=mask, **one)
        sync()
        ttft = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = model.generate(input_ids=x, attention_mask=mask, **kw)
        sync()
        total = time.perf_counter() - t0
    n = int(out.shape[1] - x.shape[1])
    return dict(ttft_s=ttft, total_s=total, new_tokens=n, tokens_per_s=n / total,
                decode_tokens_per_s=(n - 1) / (total - ttft) if total > ttft and n > 1 else None)


def time_worker(model, tok, ids, s) -> dict:
    from core.engine.inference import stream_generate
    sync()
    gen = stream_generate(model, tok, ids, s)
    t0 = time.perf_counter()
    first_text = None
    for _ in gen:
        if first_text is None:
            first_text = time.perf_counter() - t0
    st = gen.stats
    return dict(ttft_s=st["ttft_s"], total_s=st["total_s"], new_tokens=st["new_tokens"], tokens_per_s=st["tokens_per_s"],
                decode_tokens_per_s=st["decode_tokens_per_s"], first_text_s=first_text)


def time_engine(engine, sid, prompt, s) -> dict:
    t0 = time.perf_counter()
    stream = engine.stream(sid, [{"role": "user", "content": prompt}], temperature=s.temperature, top_p=s.top_p,
                           max_new_tokens=s.max_new_tokens, repetition_penalty=s.repetition_penalty,
                           min_new_tokens=s.min_new_tokens)
    first_text = None
    for _ in stream:
        if first_text is None:
            first_text = time.perf_counter() - t0
    total = time.perf_counter() - t0
    st = stream.stats
    return dict(ttft_s=st.get("ttft_s"), total_s=total, new_tokens=st.get("new_tokens"),
                tokens_per_s=st["new_tokens"] / total if st.get("new_tokens") else None,
                decode_tokens_per_s=st.get("decode_tokens_per_s"), first_text_s=first_text, worker_stats=st)


def median_of(runs: list[dict]) -> dict:
    keys = [k for k in runs[0] if isinstance(runs[0][k], (int, float)) and runs[0][k] is not None]
    return {k: round(statistics.median(r[k] for r in runs if r.get(k) is not None), 4) for k in keys}


def run_chat(base: Path, adapter: Path, workdir: Path, args) -> dict:
    import torch
    from core.engine.inference import GenSettings, load_for_chat, prompt_ids
    cuda = torch.cuda.is_available()
    # this process has not used CUDA before (merge ran in a subprocess): the peak counter starts at zero
    model, tok, info = load_for_chat(str(base), str(adapter))
    mem_loaded = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    prompt = prompt_text(args.prompt_words)
    ids = prompt_ids(tok, [{"role": "user", "content": prompt}])
    s = GenSettings(temperature=0.0, max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, repetition_penalty=1.0)
    time_plain(model, tok, ids, s)   # warm-up (kernels, allocator)
    time_worker(model, tok, ids, s)
    plain, worker = [], []
    for _ in range(args.repeats):
        plain.append(time_plain(model, tok, ids, s))
        worker.append(time_worker(model, tok, ids, s))
    out = dict(load=info.to_dict(), prompt_tokens=len(ids), new_tokens=args.new_tokens, repeats=args.repeats,
               plain=median_of(plain), worker=median_of(worker), plain_runs=plain, worker_runs=worker,
               peak_gpu_mem_gib_in_process=round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
               gpu_mem_after_load_gib=round(mem_loaded, 3) if mem_loaded is not None else None)
    del model
    import gc
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    if not args.no_engine:
        from core.chat import ChatEngine
        from core.workspace import Workspace
        engine = ChatEngine(Workspace.open(workdir / "ws"))
        try:
            t0 = time.time()
            # the engine names GPUs by their physical index: the one this process was given, if any
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
            device = f"cuda:{visible}" if cuda and visible.isdigit() else "auto"
            sid = engine.load(str(base), adapter=str(adapter), origin="shell", device=device)
            load_s = time.time() - t0
            time_engine(engine, sid, prompt, s)  # warm-up
            runs = [time_engine(engine, sid, prompt, s) for _ in range(args.repeats)]
            out["engine"] = median_of(runs)
            out["engine_runs"] = runs
            out["engine_load_s"] = round(load_s, 2)
        finally:
            engine.close()
    p, w = out["plain"], out["worker"]
    out["worker_vs_plain"] = dict(tokens_per_s_ratio=round(w["tokens_per_s"] / p["tokens_per_s"], 4),
                                  ttft_ratio=round(w["ttft_s"] / p["ttft_s"], 4))
    return out


def print_table(res: dict) -> None:
    print()
    if "merge" in res:
        m = res["merge"]
        r = m.get("recipe", {})
        print(f"merge ({res['shape']}): rc {m['returncode']}, wall {m['wall_s']} s "
              f"(load+merge {r.get('timings_s', {}).get('load_and_merge')} s, save {r.get('timings_s', {}).get('save')} s, "
              f"manifest {r.get('timings_s', {}).get('manifest')} s), peak GPU alloc {r.get('peak_gpu_mem_gib')} GiB, "
              f"nvidia-smi peak {m.get('nvidia_smi_peak_mib')} MiB, peak host RSS {r.get('peak_host_rss_gib')} GiB, "
              f"smoke test {r.get('smoke_test', {}).get('status')}")
    if "chat" in res:
        c = res["chat"]
        print(f"chat ({res['shape']}, {c['load']['quantization']} on {c['load']['device']}, prompt {c['prompt_tokens']} tokens, "
              f"{c['new_tokens']} new tokens, median of {c['repeats']}):")
        print(f"  {'path':<8} {'TTFT s':>9} {'tokens/s':>10} {'decode tok/s':>13} {'total s':>9}")
        for k in ("plain", "worker", "engine"):
            if k in c:
                v = c[k]
                print(f"  {k:<8} {v.get('ttft_s', float('nan')):>9.4f} {v.get('tokens_per_s', float('nan')):>10.2f} "
                      f"{(v.get('decode_tokens_per_s') or float('nan')):>13.2f} {v.get('total_s', float('nan')):>9.3f}")
        print(f"  worker/plain: tokens/s x{c['worker_vs_plain']['tokens_per_s_ratio']}, TTFT x{c['worker_vs_plain']['ttft_ratio']}")


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    shape = "tiny" if args.tiny else "8b"
    workdir = Path(args.workdir or f"/tmp/danlu-bench-{shape}").resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from core.rundir import RunDir
    base, adapter, export = workdir / "base", RunDir(workdir).adapter, workdir / "export"
    res: dict = dict(shape=shape, workdir=str(workdir), started=time.time(),
                     device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                     torch=torch.__version__)
    res["build_base"] = build_base(base, shape)
    res["build_adapter"] = build_adapter(base, adapter)
    print(f"[bench] base {res['build_base']}, adapter {res['build_adapter']}", flush=True)
    if args.phase in ("all", "merge"):
        res["merge"] = run_merge(adapter, export, workdir)
        print(f"[bench] merge done in {res['merge']['wall_s']} s (rc {res['merge']['returncode']})", flush=True)
        if not args.keep_export:
            shutil.rmtree(export, ignore_errors=True)
    if args.phase in ("all", "chat"):
        res["chat"] = run_chat(base, adapter, workdir, args)
    res["finished"] = time.time()
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print_table(res)
    print(f"\n[bench] results in {args.out}")
    failed = res.get("merge", {}).get("returncode", 0) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
