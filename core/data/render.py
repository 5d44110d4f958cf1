"""One example through the chat template, with the tokens training learns: shared by the training
recipe (core/engine/sft_data.py) and the Dataset tab's preview, so the preview cannot drift from
what is trained.

    tok = load_tokenizer("builtin:danlu-tiny", ws)       # transformers is imported here, lazily
    r = render(tok, {"messages": [...]}, train_on_inputs=False)
    r.ids, r.labels                                       # labels == IGNORE where nothing is learned
    segments(r, max_len=1024)   # [{"text": "<|im_start|>user\\nHi", "trained": False, "truncated": False}, ...]
    pair_segments(tok, pair)    # a preference pair: {"prompt": segments, "chosen": segments, "rejected": segments}

The loss mask comes from the model's own chat template: each assistant turn's characters are found
by rendering the conversation up to that turn, so only the assistant's words (and the template's
end-of-turn token after them) are learned. No torch here; transformers only inside functions.
"""
from __future__ import annotations

from dataclasses import dataclass

IGNORE = -100


def assistant_spans(tok, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of each assistant turn."""
    full = tok.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant" or i == 0:
            continue
        prefix = tok.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        upto = tok.apply_chat_template(messages[:i + 1], tokenize=False)
        if full.startswith(upto) and upto.startswith(prefix):
            spans.append((len(prefix), len(upto)))
        else:  # template not prefix-stable (e.g. it rewrites earlier turns): find the answer text itself
            start = full.find(m["content"], spans[-1][1] if spans else 0)
            if start >= 0:
                spans.append((start, start + len(m["content"])))
    return full, spans


@dataclass
class Rendered:
    text: str                        # the conversation as the model sees it (or the plain document)
    ids: list[int]                   # every token, before any truncation
    labels: list[int]                # the token id where it is learned, IGNORE elsewhere
    offsets: list[tuple[int, int]]   # each token's characters in `text`
    is_text: bool                    # a plain document (split into chunks, never truncated)


def render(tok, example: dict, train_on_inputs: bool = False) -> Rendered:
    """Tokens and labels exactly as training computes them (before truncation to max_seq_length)."""
    if "text" in example:
        enc = tok(example["text"], add_special_tokens=True, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        if tok.eos_token_id is not None and (not ids or ids[-1] != tok.eos_token_id):
            ids.append(tok.eos_token_id)
            offsets.append((len(example["text"]), len(example["text"])))
        return Rendered(example["text"], ids, list(ids), offsets, True)
    if "chosen" in example:  # a preference pair read as supervised data: the prompt and the chosen answer
        example = {"messages": list(example["prompt"]) + list(example["chosen"])}
    text, spans = assistant_spans(tok, example["messages"])
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
    labels = []
    for tid, (s, e) in zip(ids, offsets):
        inside = train_on_inputs or any(a <= s and e <= b and e > s for a, b in spans)
        labels.append(tid if inside else IGNORE)
    return Rendered(text, ids, labels, offsets, False)


def has_target(labels: list[int]) -> bool:
    """Training drops an example whose labels (after the first, which nothing predicts) are all IGNORE."""
    return any(lab != IGNORE for lab in labels[1:])


def segments(r: Rendered, max_len: int | None = None) -> list[dict]:
    """The rendered text cut into runs of {text, trained, truncated}: what the preview highlights.
    Characters between tokens go with the next token; tokens past max_len are marked truncated
    (conversations are cut there; documents are split into chunks instead, so they never are)."""
    out: list[dict] = []
    pos = 0
    for i, (s, e) in enumerate(r.offsets):
        if e <= pos:
            continue
        cut = bool(max_len) and not r.is_text and i >= max_len
        trained = r.labels[i] != IGNORE and not cut
        _append(out, r.text[pos:e], trained, cut)
        pos = e
    if pos < len(r.text):
        last = out[-1] if out else {"trained": False, "truncated": False}
        _append(out, r.text[pos:], last["trained"], last["truncated"])
    return out


def _append(out: list[dict], text: str, trained: bool, cut: bool) -> None:
    if out and out[-1]["trained"] == trained and out[-1]["truncated"] == cut:
        out[-1]["text"] += text
    else:
        out.append({"text": text, "trained": trained, "truncated": cut})


CHATML_FALLBACK = "chatml"


def apply_chat_template_choice(tok, chat_template: str = "auto") -> str:
    """Danlu's rule (training, evaluation, chat, export and preview alike): the model's own chat
    template, or ChatML when the model has none or the user chose it. Returns which: "model" or "chatml"."""
    from core.demo_model import CHATML_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if chat_template == CHATML_FALLBACK or not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
        return CHATML_FALLBACK
    return "model"


def open_tokenizer(source: str, *, local: bool, trust_remote_code: bool = False, chat_template: str = "auto"):
    """A tokenizer from a model folder or hub id, with the chat template chosen (the one loader of
    the Dataset preview and of training)."""
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, local_files_only=local)
    apply_chat_template_choice(tok, chat_template)
    return tok


def load_tokenizer(model: str, ws=None, chat_template: str = "auto", trust_remote_code: bool = False):
    """The tokenizer of a model setting (preset name, builtin:..., folder or hub id), ready to render."""
    from core.errors import InputError, Problem
    from core.messages import Msg
    from core.models import resolve_model
    ref = resolve_model(model, ws)
    try:
        tok = open_tokenizer(ref.source, local=ref.local, trust_remote_code=trust_remote_code, chat_template=chat_template)
    except Exception as e:  # transformers raises OSError/ValueError/HF errors for missing or offline models
        raise InputError(problems=[Problem("model", Msg("render.no_tokenizer", model=repr(model), error=str(e)[:200]),
                                           Msg("render.no_tokenizer.hint"))]) from e
    if not getattr(tok, "is_fast", False):
        raise InputError(problems=[Problem("model", Msg("render.slow_tokenizer", model=repr(model)),
                                           Msg("render.slow_tokenizer.hint"))])
    return tok


class ChatMLText:
    """A tokenizer stand-in for previews without a model: renders ChatML as text (Danlu's fallback
    template) so assistant_spans works; token counts are then estimates."""

    eos_token_id = None

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def text_segments(example: dict) -> list[dict]:
    """Character-level preview without a tokenizer: ChatML, assistant spans trained."""
    if "chosen" in example:
        example = {"messages": list(example["prompt"]) + list(example["chosen"])}
    if "text" in example:
        return [{"text": example["text"], "trained": True, "truncated": False}]
    text, spans = assistant_spans(ChatMLText(), example["messages"])
    out: list[dict] = []
    pos = 0
    for a, b in spans:
        if a > pos:
            _append(out, text[pos:a], False, False)
        _append(out, text[a:b], True, False)
        pos = b
    if pos < len(text):
        _append(out, text[pos:], False, False)
    return out


def pair_segments(tok, example: dict, max_len: int | None = None) -> dict:
    """A preference pair as the model sees it, for the side-by-side preview: {"prompt": segments,
    "chosen": segments, "rejected": segments, "tokens": {side: n} (None without a tokenizer)}.
    Each side is the prompt followed by that answer; both answers are what preference training
    learns from, the prompt never is. `tok` None: ChatML text, as text_segments."""
    prompt = list(example["prompt"])
    head = (tok or ChatMLText()).apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    out: dict = {"prompt": [], "tokens": {}}
    for side in ("chosen", "rejected"):
        conv = {"messages": prompt + list(example[side])}
        if tok is None:
            segs, n = text_segments(conv), None
        else:
            r = render(tok, conv, False)
            segs, n = segments(r, max_len), len(r.ids)
        before, after = _cut_at(segs, len(head))
        out["prompt"] = out["prompt"] or before
        out[side], out["tokens"][side] = after, n
    return out


def _cut_at(segs: list[dict], pos: int) -> tuple[list[dict], list[dict]]:
    """Segments split at character `pos` of their joined text."""
    before: list[dict] = []
    after: list[dict] = []
    at = 0
    for seg in segs:
        text, end = seg["text"], at + len(seg["text"])
        if end <= pos:
            before.append(dict(seg))
        elif at >= pos:
            after.append(dict(seg))
        else:
            before.append({**seg, "text": text[:pos - at]})
            after.append({**seg, "text": text[pos - at:]})
        at = end
    return before, after


def estimate_tokens(text: str) -> int:
    """Rough token count without a tokenizer: ~4 characters per token for Latin script, one per
    CJK character. Shown as an estimate only."""
    cjk = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return cjk + (len(text) - cjk + 3) // 4
