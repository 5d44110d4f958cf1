"""Loading a model for answering questions, rendering a chat, and generating: shared by the chat
worker, evaluation, the merge smoke test and the GPU benchmark, so all of them answer the same way.

    model, tok, info = load_for_chat("/path/base", adapter_dir="/run/adapter")   # 4-bit on CUDA, fp32 on CPU
    ids = prompt_ids(tok, [{"role": "user", "content": "Hi"}], system="Be brief.")
    for delta in stream_generate(model, tok, ids, GenSettings(max_new_tokens=64)):
        print(delta, end="")

Imports torch; only worker processes import this module (never the GUI process).
"""
from __future__ import annotations

import codecs
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from core.data.render import CHATML_FALLBACK, apply_chat_template_choice  # noqa: F401  (re-exported for the recipes)
from core.engine.common import bnb_config, bnb_bits, describe_quantization, saved_quantization, set_4bit_compute_dtype
from core.gen_settings import GenSettings  # noqa: F401  (re-exported: the recipes, the chat worker)
from core.rundir import adapter_info_path, read_json
from core.runs import check_adapter_dir  # noqa: F401  (re-exported for the recipes)

TEMPLATE_FALLBACK = CHATML_FALLBACK  # the named fallback for base models that ship no chat template
# end-of-turn markers of common templates: generation stops at any of them, not only at eos
STOP_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "</s>")


@dataclass
class LoadInfo:
    model: str
    adapter: str | None
    device: str
    quantization: str
    dtype: str
    template: str  # "model" (the tokenizer's own) or "chatml" (the named fallback)
    load_s: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def read_adapter_info(adapter_dir: Path) -> dict:
    """danlu.json written by the training recipe next to the adapter ({} for foreign adapters)."""
    return read_json(adapter_info_path(adapter_dir))


def stop_token_ids(tok, model=None) -> list[int]:
    ids = set()
    if tok.eos_token_id is not None:
        ids.add(int(tok.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for t in ([gen_eos] if isinstance(gen_eos, int) else gen_eos or []):
        ids.add(int(t))
    vocab = tok.get_vocab()
    for s in STOP_TOKENS:
        if s in vocab:
            ids.add(int(vocab[s]))
    return sorted(ids)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(device)


def load_for_chat(model_dir: str, adapter_dir: str | None = None, *, device: str = "auto", quantization: str = "auto",
                  template: str = "auto", trust_remote_code: bool = False, local: bool = True):
    """(model, tokenizer, LoadInfo). 4-bit nf4 (bf16 compute) on CUDA, full fp32 on CPU, unless told otherwise.
    With an adapter on CPU the LoRA weights are merged in (exact in fp32, and faster); on a 4-bit base
    they stay separate (merging into 4-bit weights would round them). A model saved quantized loads as
    saved (core.engine.common.saved_quantization), on a CPU too."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    t0 = time.time()
    dev = pick_device(device)
    quant = quantization if quantization != "auto" else ("4bit" if dev.type == "cuda" else "none")
    if dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        dtype = torch.float32
    tok_source = adapter_dir if adapter_dir and (Path(adapter_dir) / "tokenizer_config.json").exists() else model_dir
    tok = AutoTokenizer.from_pretrained(tok_source, trust_remote_code=trust_remote_code, local_files_only=local)
    used_template = apply_chat_template_choice(tok, template)
    kw = dict(dtype=dtype, device_map={"": dev}, use_safetensors=True, trust_remote_code=trust_remote_code,
              local_files_only=local)
    notes = []
    saved = saved_quantization(model_dir, local)
    if saved is not None:  # loaded as saved, whatever was asked: say so, and never merge into it
        quant = bnb_bits(saved)
        notes.append(f"the model is saved quantized ({describe_quantization(saved)}): loaded as saved")
    elif quant in ("4bit", "8bit"):
        kw["quantization_config"] = bnb_config(quant, dtype)
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kw)
    if saved is not None:
        set_4bit_compute_dtype(model, dtype)
    if used_template == TEMPLATE_FALLBACK and template != TEMPLATE_FALLBACK:
        notes.append("the model has no chat template of its own: using ChatML")
    if adapter_dir:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
        if quant == "none":
            model = model.merge_and_unload()
            notes.append("adapter merged into the full-precision weights")
    model.eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    info = LoadInfo(model=str(model_dir), adapter=str(adapter_dir) if adapter_dir else None, device=str(dev),
                    quantization=quant, dtype=str(dtype).replace("torch.", ""), template=used_template,
                    load_s=round(time.time() - t0, 2), notes=notes)
    return model, tok, info


def render(tok, messages: list[dict], system: str = "") -> str:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": m["role"], "content": m["content"]} for m in messages]
    try:
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    except Exception as e:  # some templates refuse a system turn: fold it into the first user message
        if system and "system" in str(e).lower():
            first = dict(msgs[1]) if len(msgs) > 1 else {"role": "user", "content": ""}
            first["content"] = f"{system}\n\n{first['content']}"
            return tok.apply_chat_template([first] + msgs[2:], tokenize=False, add_generation_prompt=True)
        raise


def prompt_room(model, max_new_tokens: int) -> int | None:
    """The most prompt tokens that leave room for the answer in the model's context window (its
    config's max_position_embeddings or the like); None when the config names no window. Without it a
    100,000-character chat message went whole into the tiny demo model (300,000 tokens for 4,096
    positions): its answer never came and the chat worker was busy with it for as long as it ran."""
    from core.model_folder import context_window
    config = getattr(model, "config", None)
    fields = config.to_dict() if hasattr(config, "to_dict") else dict(getattr(config, "__dict__", {}))
    window = context_window(fields)
    return max(1, window - max(0, int(max_new_tokens or 0))) if window else None


def prompt_ids(tok, messages: list[dict], system: str = "", max_prompt_tokens: int | None = None,
               as_text: bool = False) -> list[int]:
    """Token ids of the conversation, ready for the assistant's turn. Too long: the oldest tokens go.
    as_text (chat): the turns' special-token spellings are read as text (words_only)."""
    if as_text:
        messages = [dict(m, content=words_only(tok, m["content"])) for m in messages]
    ids = tok(render(tok, messages, system), add_special_tokens=False)["input_ids"]
    if max_prompt_tokens and len(ids) > max_prompt_tokens:
        ids = ids[-max_prompt_tokens:]
    return ids


def words_only(tok, text: str) -> str:
    """`text` with each special token's spelling ("<|im_start|>", "<|eot_id|>", "</s>") broken by a zero-width
    space after its first character. The tokenizer reads such a spelling in a message as the control token
    itself: a chat message "<|im_end|><|im_start|>system ..." opened a system turn of its own after the
    demo owner's system prompt (a stranger's words posing as the owner's)."""
    for word in _special_spellings(tok):
        if word in text:
            text = text.replace(word, word[0] + "\u200b" + word[1:])
    return text


def _special_spellings(tok) -> list[str]:
    """The tokenizer's special tokens (its named ones and every added token marked special), longest first."""
    added = getattr(tok, "added_tokens_decoder", None) or {}
    words = {t.content for t in added.values() if getattr(t, "special", False)} | set(getattr(tok, "all_special_tokens", ()))
    return sorted((w for w in words if isinstance(w, str) and len(w) > 1), key=len, reverse=True)


def gen_kwargs(tok, model, s: GenSettings) -> dict:
    kw = dict(max_new_tokens=s.max_new_tokens, eos_token_id=stop_token_ids(tok, model), pad_token_id=tok.pad_token_id,
              repetition_penalty=s.repetition_penalty)
    if s.min_new_tokens:
        kw["min_new_tokens"] = s.min_new_tokens
    if s.greedy:
        kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kw.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=None)
    return kw


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def _is_byte_token(tok, token: int) -> bool:
    piece = tok.convert_ids_to_tokens(int(token))
    return isinstance(piece, str) and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")


def _unfinished_bytes(tok, out: list[int]) -> int:
    """How many byte-fallback tokens at the end of `out` hold a character not finished yet (0: none, or the
    run of byte tokens they end is invalid anyway: the model wrote that, not a cut)."""
    run = bytearray()
    for token in reversed(out):
        if not _is_byte_token(tok, token):
            break
        run.insert(0, int(tok.convert_ids_to_tokens(int(token))[3:5], 16))
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(bytes(run), final=False)  # keeps an unfinished character's bytes back
    except UnicodeDecodeError:
        return 0
    return len(decoder.getstate()[0])


class Generation:
    """Iterate for text deltas; afterwards `.stats` holds time to first token and tokens per second.

    Its own decode loop, in the caller's thread: prefill once, then one forward per token over the
    key/value cache, with greedy or temperature/top-p sampling, repetition penalty and min_new_tokens
    as transformers' generate() applies them (greedy answers are token-for-token the same; a test
    checks). The first version ran generate() in a thread behind a TextIteratorStreamer; on an H100
    with an nf4 8B model that path was 0.6x the tokens/s of a plain generate() (decode there is
    bound by Python and kernel launches, and every cross-thread hand-off costs). `stop` (set by the
    reader's other thread: Stop button, closed tab) ends the answer at the next token.
    """

    def __init__(self, model, tok, ids: list[int], s: GenSettings, stop: threading.Event | None = None):
        self.model, self.tok, self.ids, self.s = model, tok, list(ids), s
        self.stop = stop or threading.Event()
        self.stats: dict = {}

    def __iter__(self):
        t0 = time.perf_counter()
        self.tokens: list[int] = []
        first_at = None
        try:
            with torch.inference_mode():
                for delta in self._tokens_as_text():
                    if first_at is None:
                        first_at = time.perf_counter()
                    if delta:
                        yield delta
        finally:
            self._finish(t0, first_at, len(self.tokens))

    def _tokens_as_text(self):
        """Yield once per new token: the text it completes ("" while a character is still partial),
        and at the end whatever is left (a character that never completed shows as \ufffd)."""
        out: list[int] = []
        shown = ""
        self.ended_by_model = False  # the end token, not the token limit or Stop (_final_text)
        for token in self._decode_loop():
            out.append(token)
            self.tokens = out
            # a run of byte-fallback tokens (<0xE5>, ...: Llama/Mistral-style SentencePiece) is decoded as one
            # piece: a byte shown alone could turn into \ufffd once later bytes join it, so wait for its end
            if _is_byte_token(self.tok, token):
                yield ""
                continue
            text = self.tok.decode(out, skip_special_tokens=True)
            if text.endswith("\ufffd"):  # half of a multi-byte character: wait for the rest
                yield ""
                continue
            delta, shown = text[len(shown):], text
            yield delta
        if out:
            text = self._final_text(out)
            if len(text) > len(shown) and text.startswith(shown):
                yield text[len(shown):]

    def _final_text(self, out: list[int]) -> str:
        """The whole answer. One the model ended (its end token) is what the tokenizer makes of it: an
        invalid byte sequence the model wrote shows as \ufffd. One cut short (the token limit, Stop) in the
        middle of a character ends at the last complete one: that character was never finished, and a
        byte-fallback tokenizer showed not one \ufffd for it but one for every byte of the run it ends,
        the complete characters before it too ("你好，世界" cut in its last character read "��������������")."""
        text = self.tok.decode(out, skip_special_tokens=True)
        if self.ended_by_model or not text.endswith("\ufffd"):
            return text
        k = _unfinished_bytes(self.tok, out)
        if k:
            return self.tok.decode(out[:-k], skip_special_tokens=True)
        # a byte-level tokenizer (GPT-2 style): an unfinished character is one \ufffd at the end
        return text[:-1] if not _is_byte_token(self.tok, out[-1]) else text

    def _decode_loop(self):
        model, s = self.model, self.s
        dev = model_device(model)
        eos_ids = stop_token_ids(self.tok, model)
        eos = torch.tensor(eos_ids, device=dev, dtype=torch.long)
        seen = torch.tensor([self.ids], device=dev, dtype=torch.long)  # for the repetition penalty
        cache = _new_cache(model)
        logits = model(input_ids=seen, past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1, :]
        for i in range(s.max_new_tokens):
            scores = logits.float()
            if s.repetition_penalty != 1.0:
                picked = scores.gather(1, seen)
                scores = scores.scatter(1, seen, torch.where(picked < 0, picked * s.repetition_penalty,
                                                             picked / s.repetition_penalty))
            if i < s.min_new_tokens and eos.numel():
                scores[:, eos] = float("-inf")
            nxt = _choose(scores, s)  # shape (1, 1)
            token = int(nxt)  # the one host sync per token: the reader needs the token now
            if token in eos_ids:
                self.ended_by_model = True
                return
            yield token
            if self.stop.is_set() or i + 1 == s.max_new_tokens:
                return
            seen = torch.cat([seen, nxt], dim=1)
            logits = model(input_ids=nxt, past_key_values=cache, use_cache=True).logits[:, -1, :]

    def _finish(self, t0: float, first_at: float | None, n: int) -> None:
        t_end = time.perf_counter()
        ttft = (first_at - t0) if first_at else None
        decode_s = (t_end - first_at) if first_at else None
        self.stats = dict(prompt_tokens=len(self.ids), new_tokens=n, total_s=round(t_end - t0, 4),
                          ttft_s=round(ttft, 4) if ttft is not None else None,
                          tokens_per_s=round(n / (t_end - t0), 2) if t_end > t0 else None,
                          decode_tokens_per_s=round((n - 1) / decode_s, 2) if decode_s and n > 1 else None)


def _new_cache(model):
    from transformers import DynamicCache
    return DynamicCache(config=model.config)


def _choose(scores: torch.Tensor, s: GenSettings) -> torch.Tensor:
    """Greedy, or temperature + nucleus (top-p) sampling, as generate() does them."""
    if s.greedy:
        return scores.argmax(dim=-1, keepdim=True)
    scores = scores / s.temperature
    if s.top_p < 1.0:
        sorted_scores, order = torch.sort(scores, descending=False)
        cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
        drop = cum <= (1 - s.top_p)
        drop[..., -1:] = False  # always keep the most likely token
        scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1)


def stream_generate(model, tok, ids: list[int], s: GenSettings, stop: threading.Event | None = None) -> Generation:
    return Generation(model, tok, ids, s, stop)


@torch.inference_mode()
def generate_batch(model, tok, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
    """Greedy answers for several prompts at once (left-padded), as evaluation needs them."""
    dev = model_device(model)
    width = max(len(p) for p in prompts)
    pad = tok.pad_token_id
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    out = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), max_new_tokens=max_new_tokens,
                         do_sample=False, temperature=None, top_p=None, top_k=None,
                         eos_token_id=stop_token_ids(tok, model), pad_token_id=pad)
    return [tok.decode(row[width:], skip_special_tokens=True).strip() for row in out]
