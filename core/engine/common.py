"""Shared pieces of the recipes (train, evaluate, merge): process group, model and tokenizer
loading, atomic JSON, and turning an exception into a reason and a hint a person can act on.

Imported only by scripts running under torchrun (or plain python for merge); may import torch.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Known-harmless noise on CPU: bnb's optional "kernels" package (never install it: it fetches from
# the hub) and a PyTorch note about bnb's 4-bit op. The note is harmless only while the weights keep
# their usual layout: keep_4bit_differentiable() below sees to that in training.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message=".*an autograd kernel was not registered.*")
# PEFT 0.21 reads transformers' deprecated alias model.is_gradient_checkpointing whenever it wraps a
# model (PeftModel.__init__, training or not); our own code calls activation_checkpointing_enable.
# Without this its FutureWarning and source line sat in every run's stdout.log, which the Train tab
# shows a non-programmer. Only that message from that module: any other warning still shows.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning,
                        module=r"transformers\.modeling_utils")

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from core import knobs  # noqa: E402
from core.config import TrainConfig  # noqa: E402
from core.data.render import open_tokenizer  # noqa: E402
from core.errors import DanluError, InputError  # noqa: E402
from core.failures import described, sign_in  # noqa: E402
from core.messages import Msg, said  # noqa: E402
from core.engine.faults import fault  # noqa: E402,F401  (re-exported for the recipes)
from core.model_folder import bnb_bits  # noqa: E402
from core.rundir import RunDir, append_jsonl, claim_json, write_json  # noqa: E402,F401  (re-exported for the recipes)


@dataclass(frozen=True)
class Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    backend: str | None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def setup_dist() -> Dist:
    """One process per GPU (NCCL) or per CPU worker (gloo). Plain `python` works too (world 1)."""
    rank = int(os.environ.get("RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
        cap_gpu_memory(device)
    else:
        device, backend = torch.device("cpu"), "gloo"
    if world > 1 and not dist.is_initialized():
        from datetime import timedelta
        # A hung peer should fail the job in minutes, not the default 30 min; the supervisor's
        # stall watchdog covers hangs outside collectives.
        dist.init_process_group(backend, timeout=timedelta(minutes=knobs.number(knobs.DIST_TIMEOUT_MIN, 10)),
                                device_id=device if device.type == "cuda" else None)
    return Dist(rank, world, local_rank, device, backend if world > 1 else None)


def gpu_memory_cap_gib() -> float | None:
    """The benchmark knob DANLU_GPU_MEMORY_CAP_GIB (core.knobs), or None."""
    return knobs.number(knobs.GPU_MEMORY_CAP_GIB)


def cap_gpu_memory(device) -> None:
    """Let this process use at most the knob's GiB of its GPU, as a smaller card would (benchmarks:
    what fits in 24 GiB, measured on a bigger card)."""
    cap = gpu_memory_cap_gib()
    if cap:
        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap / total), device)


def barrier(d: Dist) -> None:
    if d.world > 1:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def compute_dtype(cfg: TrainConfig, d: Dist) -> torch.dtype:
    if cfg.precision == "fp32" or (cfg.precision == "auto" and not d.cuda):
        return torch.float32
    if cfg.precision == "fp16":
        return torch.float16
    if d.cuda and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def load_tokenizer(source: str, cfg: TrainConfig, local: bool):
    """The training tokenizer: the Dataset preview's loader (core.data.render), whose named ChatML
    fallback for base models without a template is written into the adapter so chat uses it too;
    then the template is tried once before any data."""
    warn_remote_code(cfg.trust_remote_code, source)
    tok = open_tokenizer(source, local=local, trust_remote_code=cfg.trust_remote_code, chat_template=cfg.chat_template)
    check_chat_template(tok, source)
    return tok


class ChatTemplateError(DanluError):
    pass


PROBE_CONVERSATION = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi."}]


def check_chat_template(tok, source: str) -> None:
    """Render one plain conversation before any data: a broken or hostile template (one that tries
    to reach Python internals or read files) fails here with a clear reason, not deep in a row.
    transformers renders in jinja2's ImmutableSandboxedEnvironment, which refuses such access."""
    try:
        tok.apply_chat_template(PROBE_CONVERSATION, tokenize=False)
    except Exception as e:
        raise ChatTemplateError(Msg("fail.template_broken", model=source, error=f"{type(e).__name__}: {str(e)[:300]}"),
                                hint=Msg("fail.template_broken.hint")) from e


def warn_remote_code(trust: bool, source: str) -> None:
    """Every loader that may pass trust_remote_code=True says so in the log first."""
    if trust:
        print(f"[danlu] WARNING: {Msg('config.remote_code', model=source)}", file=sys.stderr, flush=True)


def quantization_config(cfg: TrainConfig, dtype: torch.dtype, sharded: bool = False):
    return bnb_config(cfg.quantization, dtype, sharded)


def bnb_config(quantization: str, dtype: torch.dtype, sharded: bool = False):
    """bitsandbytes settings for "4bit" (nf4, double quantisation, `dtype` compute) or "8bit"; None for "none"."""
    if quantization not in ("4bit", "8bit"):
        return None
    from transformers import BitsAndBytesConfig
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    # FSDP flattens each layer's weights into one tensor of one dtype: the packed 4-bit bytes are
    # then stored as (viewed as) the compute dtype, like the norms next to them
    storage = {"bnb_4bit_quant_storage": dtype} if sharded else {}
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype, **storage)


def load_base_model(source: str, cfg: TrainConfig, d: Dist, local: bool, *, quantize: bool = True, dtype=None,
                    sharded: bool = False):
    """Each rank holds its own full copy on its own GPU (DDP), 4-bit when asked. `sharded`: the
    model is read into host memory, and FSDP then moves each rank's share to its GPU (a model that
    does not fit one GPU is never whole on one)."""
    from transformers import AutoModelForCausalLM
    dtype = dtype or compute_dtype(cfg, d)
    kw = dict(dtype=dtype, device_map={"": "cpu" if sharded else d.device}, attn_implementation=cfg.attn_implementation,
              use_safetensors=True, trust_remote_code=cfg.trust_remote_code, local_files_only=local)
    saved = saved_quantization(source, local)
    if saved is not None:  # a pre-quantized checkpoint: loaded as saved, whatever `quantization` says
        check_saved_quantization(saved, source, dtype, sharded)
        log(d, f"[danlu] {source} is already quantized ({describe_quantization(saved)}): loaded as it is saved")
    elif quantize and (qc := quantization_config(cfg, dtype, sharded)) is not None:
        kw["quantization_config"] = qc
    model = AutoModelForCausalLM.from_pretrained(source, **kw)
    if saved is not None:
        set_4bit_compute_dtype(model, dtype)
    return model


def saved_quantization(source: str, local: bool) -> dict | None:
    """The bitsandbytes `quantization_config` a pre-quantized checkpoint's config.json carries, or None.
    transformers loads such weights as saved (it does not quantize again) and ignores a config passed
    beside it (with a warning), so Danlu passes none and checks the one that will be used."""
    import json

    from transformers.utils import cached_file
    try:
        path = cached_file(source, "config.json", local_files_only=local, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False)
        saved = json.loads(Path(path).read_text()).get("quantization_config") if path else None
    except (OSError, ValueError):
        return None
    return saved if bnb_bits(saved) else None


def describe_quantization(saved: dict) -> str:
    if bnb_bits(saved) == "4bit":
        return f"bitsandbytes 4-bit {saved.get('bnb_4bit_quant_type', 'fp4')}"
    return "bitsandbytes 8-bit"


def check_saved_quantization(saved: dict, source: str, dtype: torch.dtype, sharded: bool) -> None:
    """FSDP flattens each layer into one tensor of one dtype: the packed 4-bit bytes must be stored
    as the compute dtype, like the norms beside them (bnb_config asks for that when Danlu quantizes)."""
    storage = saved.get("bnb_4bit_quant_storage") or "uint8"
    need = str(dtype).removeprefix("torch.")
    if sharded and saved.get("load_in_4bit") and storage != need:
        raise DanluError(Msg("fail.saved_4bit_storage", model=source, storage=storage, need=need),
                         hint=Msg("fail.saved_4bit_storage.hint", need=need))


def set_4bit_compute_dtype(model, dtype: torch.dtype) -> None:
    """A pre-quantized checkpoint names its own compute dtype; Danlu's precision setting decides, as
    it does when Danlu quantizes (bnb_config)."""
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return
    for m in model.modules():
        if isinstance(m, Linear4bit):
            m.compute_dtype = dtype


class Diverged(DanluError):
    pass


class DiskFull(DanluError):
    pass


def keep_4bit_differentiable(model) -> int:
    """Training on CPU: stop bitsandbytes from repacking 4-bit weights for fast CPU inference.
    bitsandbytes 0.50 repacks a Linear4bit's weights, for good, at its first eval-mode forward
    without gradients on a CPU with AVX512-BF16 (a validation pass, DPO's reference pass); its matmul
    on the repacked weights has no backward, so from then on no gradient flowed through the frozen
    layers to the LoRA weights below them (tests/recipes/test_cpu_4bit_grad.py). Returns the
    number of layers kept."""
    try:
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    kept = 0
    for m in model.modules():
        if isinstance(m, Linear4bit) and getattr(m, "support_avx512bf16_for_cpu", False):
            m.support_avx512bf16_for_cpu = False
            kept += 1
    return kept


# what a crash is said as, by the work the process did: an export or evaluation has no Retry button
CRASHED = {"train": ("fail.crashed", "fail.crashed.hint"), "export": ("fail.export_crashed", "fail.export_crashed.hint"),
           "eval": ("fail.eval_crashed", "fail.eval_crashed.hint")}


def classify(exc: BaseException, cfg: TrainConfig | None = None, work: str = "train") -> dict:
    """reason + message + hint for error.json (English and codes, core.messages.said), from an
    exception raised inside a rank. The reasons and their words are core.failures' table (the
    supervisor's diagnosis says the same); a rank adds what only it knows."""
    text = f"{type(exc).__name__}: {exc}"
    sign = sign_in(text)
    if isinstance(exc, torch.OutOfMemoryError) or sign == "cuda_oom":
        return described("cuda_oom", hint=_oom_hint(cfg))
    if isinstance(exc, InputError):  # an export's is about its folder, adapter or model, not rows of data
        return dict(reason="data_error", **said(exc.as_msg(), Msg("fail.export_input.hint" if work == "export"
                                                                  else "fail.data_error.hint")))
    if isinstance(exc, Diverged):
        return dict(reason="diverged", **said(exc.msg, exc.hint_msg))
    if isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno == 28) or sign == "disk_full":
        # safetensors raises its own error type for ENOSPC, hence the sign in the text too
        full = Msg("fail.disk_full_saving_detail", detail=exc.msg) if isinstance(exc, DiskFull) else Msg("fail.disk_full_saving")
        return described("disk_full", full, Msg("fail.free_disk_runs.hint"))
    if isinstance(exc, ChatTemplateError):
        return dict(reason="chat_template", **said(exc.msg, exc.hint_msg))
    if _is_template_error(exc):
        return dict(reason="chat_template", **said(Msg("fail.template_row", error=text[:400]), Msg("fail.template_row.hint")))
    if isinstance(exc, DanluError):
        return dict(reason="error", **said(exc.msg, exc.hint_msg))
    if sign is not None:  # remote_code, nccl_timeout, peer_lost
        return described(sign)
    said_as, hint = CRASHED[work]
    return dict(reason="crashed", **said(Msg(said_as, error=text[:500]), Msg(hint)))


def _oom_hint(cfg: TrainConfig | None) -> Msg:
    """What to lower first, with this run's own numbers; nothing already at its floor (a batch of 1
    cannot be lowered to 1)."""
    if cfg is None:
        return Msg("fail.oom_lower")
    more = []
    if cfg.max_seq_length > 512 and cfg.micro_batch_size > 1:
        more.append(Msg("fail.oom_or_length", length=cfg.max_seq_length, half=cfg.max_seq_length // 2))
    if not cfg.gradient_checkpointing:
        more.append(Msg("fail.oom_or_checkpointing"))
    if cfg.memory_plan != "lowest":
        more.append(Msg("fail.oom_or_lowest_plan"))
    if cfg.quantization != "4bit":
        more.append(Msg("fail.oom_or_4bit"))
    if cfg.micro_batch_size > 1:
        return Msg("fail.oom_lower_from", mb=cfg.micro_batch_size, half=cfg.micro_batch_size // 2, more=more)
    if cfg.max_seq_length > 512:
        return Msg("fail.oom_length_from", length=cfg.max_seq_length, half=cfg.max_seq_length // 2, more=more)
    return Msg("fail.oom_smallest", length=cfg.max_seq_length, more=more)


def _is_template_error(exc: BaseException) -> bool:
    try:
        from jinja2.exceptions import TemplateError
    except ImportError:  # pragma: no cover - jinja2 comes with transformers
        return False
    return isinstance(exc, TemplateError)


def record_failure(run_dir: Path, rank: int, exc: BaseException, cfg: TrainConfig | None = None,
                   work: str = "train") -> dict:
    """Each failing rank writes errors/rank<R>.json; the first one also claims error.json."""
    info = classify(exc, cfg, work)
    info.update(rank=rank, time=time.time(), traceback="".join(traceback.format_exception(exc))[-6000:])
    run = RunDir(run_dir)
    write_json(run.rank_error(rank), info)
    claim_json(run.error, info)
    return info


class StopFlag:
    """SIGTERM/SIGINT ask the run to save and stop at the end of the current step."""

    def __init__(self):
        self.requested = False

    def install(self):
        def handler(signum, frame):
            self.requested = True
            print(f"[danlu] received signal {signum}: saving and stopping after this step", flush=True)
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return self


def keeps_record(d: Dist, run_dir: Path) -> bool:
    """Whether this process writes the run's progress, metrics and end into `run_dir`: rank 0, and the first
    process of every other machine whose run folder is its own. A job started on each machine with
    `train --nnodes` has a job and a folder on each: without them machine 1's stall watchdog saw no step for
    30 minutes and stopped the whole run, and its job ended 'Failed, exited with code 0'. The machines of
    a Slurm job share one folder: rank 0 alone writes there. A broadcast: every rank calls it once."""
    if d.world == 1:
        return True
    here = str(Path(run_dir).resolve())
    rank0 = [here if d.main else None]
    dist.broadcast_object_list(rank0, src=0)
    return d.main or (d.local_rank == 0 and rank0[0] != here)


def log(d: Dist, *args) -> None:
    if d.main:
        print(*args, flush=True)
        sys.stdout.flush()
