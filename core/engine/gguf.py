"""GGUF steps of an export, each in a child process so that Stop (SIGTERM) can end it at once and a crash
inside llama.cpp cannot take the export job down with it:

    convert(merged_dir, out_file, "bf16")                 # llama.cpp's convert_hf_to_gguf.py, run with this Python
    quantize(src_gguf, dst_gguf, "q4_k_m", threads=8)     # llama.cpp's quantiser (llama_model_quantize)
    check = verify(gguf, prompt_ids, prompt_text, reference, stop_ids)   # load it, answer greedily, compare

The children are this module again:
    python -m core.engine.gguf quantize SRC DST q4_k_m THREADS
    python -m core.engine.gguf verify REQUEST.json RESULT.json
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from core.errors import DanluError
from core.messages import Msg, keep
from core.export_formats import FORMATS

_children: set[subprocess.Popen] = set()
# the first tokens of an answer that a full-precision / 8-bit GGUF must repeat exactly (issue 17); the
# lower types are checked for loading and answering, and their agreement is reported
STRICT_TYPES = ("f16", "bf16", "q8_0")
CHECK_TOKENS = 16


def stop_children() -> None:
    """Stop every child still running (called when the export is stopped or fails)."""
    for p in list(_children):
        if p.poll() is None:
            p.kill()
        p.wait()
        _children.discard(p)


CHILD_PEAK_RSS: dict[str, int] = {}  # what -> the child's highest resident memory (bytes), for result.json


def _run(argv: list[str], what: str, env: dict | None = None, *, said: Msg) -> float:
    """Run a child with this process's stdout/stderr (the job log); raise DanluError when it fails.
    `what` names it in the peak-memory record, `said` in the message."""
    import psutil
    t0 = time.time()
    proc = subprocess.Popen(argv, env=env)
    _children.add(proc)
    peak = 0
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.25)
                break
            except subprocess.TimeoutExpired:
                try:  # sampled while it runs: the converter and the quantiser hold weights in host memory
                    peak = max(peak, psutil.Process(proc.pid).memory_info().rss)
                except psutil.Error:
                    pass
        CHILD_PEAK_RSS[what] = peak
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _children.discard(proc)
    if rc != 0:
        raise DanluError(Msg("export.step_failed", what=said, rc=rc), Msg("export.step_failed.hint"))
    return time.time() - t0


def convert(merged_dir: Path, out_file: Path, outtype: str) -> float:
    """merged Hugging Face folder -> one GGUF at full precision (f16 or bf16), with llama.cpp's converter."""
    from core import gguf_tools
    script = gguf_tools.converter_script()
    if not script.is_file():
        raise DanluError(Msg("export.no_converter", path=str(script)), Msg("export.no_converter.hint"))
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_LOCAL_GGUF="")
    env.pop("NO_LOCAL_GGUF")  # the converter's own gguf-py sits next to it: the version it was written for
    return _run([sys.executable, str(script), str(merged_dir), "--outfile", str(out_file), "--outtype", outtype],
                "llama.cpp's converter", env, said=Msg("export.converter"))


def quantize(src: Path, dst: Path, fmt: str, threads: int) -> float:
    return _run([sys.executable, "-m", "core.engine.gguf", "quantize", str(src), str(dst), fmt, str(threads)],
                f"quantising to {fmt.upper()}", said=Msg("export.quantising", type=fmt.upper()))


def verify(gguf: Path, fmt: str, prompt_ids: list[int], prompt_text: str, reference: list[int], stop_ids: list[int],
           work: Path, threads: int) -> dict:
    """Load the GGUF with llama.cpp, answer the check prompt greedily and compare with transformers' answer."""
    req, res = work / f"verify-{fmt}.json", work / f"verify-{fmt}.result.json"
    req.write_text(json.dumps(dict(gguf=str(gguf), prompt_ids=prompt_ids, prompt_text=prompt_text,
                                   n=CHECK_TOKENS, stop_ids=stop_ids, threads=threads)))
    try:
        _run([sys.executable, "-m", "core.engine.gguf", "verify", str(req), str(res)], f"loading the {fmt.upper()} GGUF",
             said=Msg("export.loading_gguf", type=fmt.upper()))
        got = json.loads(res.read_text())
    except DanluError as e:
        return dict(status="failed", **keep("error", e.msg))
    # the answer: the first CHECK_TOKENS tokens, or up to and including the end-of-turn token when the
    # answer is shorter (what a model emits after its answer has ended is not compared, only reported)
    ref = reference[:CHECK_TOKENS]
    end = next((i + 1 for i, t in enumerate(ref) if t in set(stop_ids)), len(ref))
    agree = _agreeing(got["tokens"], ref)
    same = got["tokens"][:end] == ref[:end]
    out = dict(got, compared_tokens=end, agreeing_tokens=min(agree, end), same_as_transformers=same,
               forced_tokens=len(ref), forced_agreeing_tokens=agree)
    kquant_fallback = fmt.startswith("q") and "_k" in fmt and not any("_K" in k for k in got.get("tensor_types", {}))
    if kquant_fallback:  # every row narrower than a K-quant block (256): llama.cpp used Q5_0/Q8_0 instead
        out.update(keep("note", Msg("export.kquant_note", types=", ".join(
            k for k in got["tensor_types"] if k not in ("F32", "F16", "BF16")))))
    if not got["reply"].strip() and not got["tokens"]:
        out.update(status="failed", **keep("error", Msg("export.no_token")))
    elif fmt in STRICT_TYPES and not same:
        out.update(status="failed", **keep("error", Msg("export.diverged", agree=agree, end=end, type=fmt.upper())))
    else:
        out["status"] = "passed"
    return out


def _agreeing(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# ---- the children -------------------------------------------------------------------------------
def _quantize_main(src: str, dst: str, fmt: str, threads: str) -> int:
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, "LLAMA_FTYPE_" + FORMATS[fmt].llama_ftype)
    params.nthread = int(threads)
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        print(f"[danlu] llama_model_quantize returned {rc}", file=sys.stderr, flush=True)
    return 1 if rc != 0 else 0


def tensor_types(path: str) -> dict:
    """How many tensors of each type the GGUF holds (e.g. {'Q4_K': 193, 'Q6_K': 33, 'F32': 65})."""
    from gguf import GGUFReader
    counts: dict[str, int] = {}
    for t in GGUFReader(path).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return dict(sorted(counts.items()))


def _verify_main(request: str, result: str) -> int:
    import llama_cpp
    import numpy as np
    req = json.loads(Path(request).read_text())
    t0 = time.time()
    ids = req["prompt_ids"]
    llm = llama_cpp.Llama(model_path=req["gguf"], n_ctx=len(ids) + req["n"] + 8, n_batch=max(8, len(ids)),
                          n_threads=req["threads"], logits_all=True, verbose=False)
    loaded = time.time()
    own_ids = llm.tokenize(req["prompt_text"].encode("utf-8"), add_bos=llm._model.add_bos_token(), special=True)
    stops = set(req["stop_ids"]) | {llm.token_eos()}
    tokens: list[int] = []
    llm.eval(ids)
    while len(tokens) < req["n"]:  # on past an end-of-turn token, as the transformers reference does
        t = int(np.argmax(llm.scores[llm.n_tokens - 1]))  # greedy: the highest logit, as transformers' do_sample=False
        tokens.append(t)
        llm.eval([t])
    answer = next((tokens[:i] for i, t in enumerate(tokens) if t in stops), tokens)
    reply = llm.detokenize(answer).decode("utf-8", errors="replace")
    Path(result).write_text(json.dumps(dict(
        tokens=tokens, reply=reply, prompt_tokens_match=own_ids == ids, tensor_types=tensor_types(req["gguf"]),
        load_s=round(loaded - t0, 2), answer_s=round(time.time() - loaded, 2))))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["quantize"]:
        sys.exit(_quantize_main(*sys.argv[2:6]))
    if sys.argv[1:2] == ["verify"]:
        sys.exit(_verify_main(*sys.argv[2:4]))
    sys.exit(f"usage: python -m core.engine.gguf quantize SRC DST TYPE THREADS | verify REQUEST.json RESULT.json")
