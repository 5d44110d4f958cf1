"""The built-in demo model: a tiny Llama with its own SentencePiece tokenizer and chat template.

Generated deterministically on first use into `<workspace>/models/danlu-tiny/` (no weights are
committed, nothing is downloaded): the tokenizer is trained on the demo dataset's text, the weights
come from a fixed seed. Two builds give byte-identical files.

The tokenizer is a Llama-style SentencePiece BPE with byte fallback (`tokenizer.model`, plus the same
vocabulary and merges as a fast `tokenizer.json`), the family llama.cpp's GGUF converter knows: a
byte-level BPE trained from scratch is refused there ("BPE pre-tokenizer was not recognized"), so a
GGUF export of the demo would be impossible. No space is put in front of the text
(`add_prefix_space: false`): llama.cpp would otherwise add one after every special token and split
"<|im_start|>user" differently from transformers.

Who builds: the job's supervisor, before any rank starts (a build inside a running
torch.distributed group writes only the tokenizer: transformers saves weights on rank 0 alone),
the GUI at launch, and single-process users (chat, a shared demo). Ranks only load (`require`).
A folder counts as built only with the stamp a finished build writes last (`danlu-build.json`,
file -> sha256, and the build's VERSION); anything else in its place (half-built, foreign, edited, an
older build) is rebuilt: the weights come out the same, so a run trained on the older build still fits.

`initializer_range=0.2` (not the usual 0.02) matters: with tiny random weights the frozen output
layer gives near-uniform logits and LoRA cannot move the loss much; with 0.2 the demo visibly
learns (loss 5.9 -> under 1 in a few epochs).

    python -m core.demo_model [--workspace WS]      # prepare it once (what the supervisor runs)
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from core.errors import NotFound
from core.messages import Msg
from core.workspace import PRESETS_DIR, Workspace

DEMO_NAME = "danlu-tiny"
BUILTIN_PREFIX = "builtin:"
DEMO_DATA = PRESETS_DIR / "templates" / "data" / "demo.jsonl"
STAMP = "danlu-build.json"  # written last by a finished build (file -> sha256)
VERSION = 2  # 2: generation_config.json recommends SAMPLING (version 1's builds are rebuilt)
# the answers' recommended sampling (core.gen_settings.model_defaults reads it): at Danlu's usual 0.7 the
# tiny model, even trained on the demo data, answered mostly garbled text, at 0.2 clean sentences
SAMPLING = {"do_sample": True, "temperature": 0.2, "top_p": 0.9}
SPECIAL_TOKENS = ["<unk>", "<|bos|>", "<|eos|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]  # ids 0..5
VOCAB_SIZE = 512  # 256 byte-fallback pieces, the 6 specials, the rest learned from the demo text

# ChatML; also Danlu's named fallback for base models that ship no chat template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_EXTRA_TEXT = [
    "The furnace keeper answers questions about fire, pills and furnaces.",
    "Hello, how are you? I am fine, thank you. What is your question?",
    "One two three four five six seven eight nine ten hours.",
    "system",
]


def is_builtin(name: str) -> bool:
    return name.startswith(BUILTIN_PREFIX)


def builtin_path(name: str, ws: Workspace) -> Path:
    return ws.models / name[len(BUILTIN_PREFIX):]


def _corpus() -> list[str]:
    lines = list(_EXTRA_TEXT)
    with open(DEMO_DATA, encoding="utf-8") as f:
        for line in f:
            for m in json.loads(line)["messages"]:
                lines += [m["role"], m["content"]]  # ChatML puts the role right after <|im_start|>: learn it whole
    return lines


def _train_sentencepiece() -> bytes:
    """A SentencePiece BPE model (the bytes of tokenizer.model) learned from the demo text, deterministically."""
    import io

    import sentencepiece as spm
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()), model_writer=buf, model_type="bpe", vocab_size=VOCAB_SIZE,
        byte_fallback=True, character_coverage=1.0, split_digits=True, allow_whitespace_only_pieces=True,
        # text stays as typed: no Unicode normalisation, no squeezed spaces, no space put in front
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, unk_piece=SPECIAL_TOKENS[0], bos_piece=SPECIAL_TOKENS[1],
        eos_piece=SPECIAL_TOKENS[2], pad_piece=SPECIAL_TOKENS[3],
        control_symbols=SPECIAL_TOKENS[4:],  # control: never produced from plain text, typed CONTROL in a GGUF
        num_threads=1, minloglevel=2)
    return buf.getvalue()


def _fast_tokenizer(sp_model: bytes):
    """The same tokenizer as a `tokenizers` BPE (what transformers loads), built from the SentencePiece
    vocabulary: the merges are the pieces' splits into two pieces, ordered by the piece's score (the
    way transformers converts Llama's tokenizer.model)."""
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers
    sp = spm.SentencePieceProcessor(model_proto=sp_model)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    merges = []
    for piece, pid in vocab.items():
        if sp.is_control(pid) or sp.is_byte(pid) or sp.is_unknown(pid):
            continue
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        merges += [(left, right, sp.get_score(pid)) for left, right in sorted(splits, key=lambda m: (vocab[m[0]], vocab[m[1]]))]
    merges.sort(key=lambda m: -m[2])  # stable: equal scores keep the vocabulary's order
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[(a, b) for a, b, _ in merges], unk_token=SPECIAL_TOKENS[0],
                               fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def record_special_token_behaviour(tok, folder: Path) -> None:
    """Write `add_bos_token` / `add_eos_token` into the folder's tokenizer_config.json as the tokenizer really
    behaves. transformers 5 keeps them only inside tokenizer.json's post-processor, which llama.cpp's converter
    cannot read when it adds nothing; without the keys a SentencePiece GGUF defaults to putting a BOS token in
    front of every prompt, which this model never saw in training. transformers ignores the keys on loading."""
    ids = tok("a", add_special_tokens=True)["input_ids"]
    path = folder / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["add_bos_token"] = bool(tok.bos_token_id is not None and ids[:1] == [tok.bos_token_id])
    cfg["add_eos_token"] = bool(tok.eos_token_id is not None and ids[-1:] == [tok.eos_token_id])
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")


def build(out_dir: Path, seed: int = 0) -> Path:
    """Write the tiny model and tokenizer to `out_dir` (which must not exist)."""
    import torch
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # transformers saves weights and config on rank 0 only: a build here left tokenizer files alone
        raise RuntimeError("the demo model must be built before the ranks start (core.demo_model.ensure_demo_model)")
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    sp_model = _train_sentencepiece()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=_fast_tokenizer(sp_model), bos_token="<|bos|>",
                                     eos_token="<|im_end|>", pad_token="<|pad|>", unk_token="<unk>",
                                     add_bos_token=False, add_eos_token=False, add_prefix_space=False)
    hf_tok.chat_template = CHATML_TEMPLATE

    torch.manual_seed(seed)
    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=len(hf_tok), max_position_embeddings=4096,
                      initializer_range=0.2, bos_token_id=hf_tok.bos_token_id,
                      eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    for key, value in SAMPLING.items():
        setattr(model.generation_config, key, value)
    out_dir.mkdir(parents=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    hf_tok.save_pretrained(out_dir)
    record_special_token_behaviour(hf_tok, out_dir)
    (out_dir / "tokenizer.model").write_bytes(sp_model)  # llama.cpp's converter reads the vocabulary from here
    for p in out_dir.iterdir():  # safetensors are written 0600; let other local users read the demo
        p.chmod(0o644)
    return out_dir


def ensure_demo_model(ws: Workspace | None = None, name: str = BUILTIN_PREFIX + DEMO_NAME) -> Path:
    """Return the demo model folder, building it when it is missing, half-built or not ours.

    Safe when several processes race (one builds under a file lock, the others wait and reuse it)
    and when a builder was killed half-way (its `.partial` folder is thrown away, never trusted).
    Call it only where no torch.distributed group is running: the launcher's supervisor does,
    before any rank starts (`prepare_step`); ranks call `require()` and only load."""
    ws = ws or Workspace.open()
    target = _target(name, ws)
    if is_complete(target):
        return target
    with _locked(ws):
        if is_complete(target):  # built by whoever held the lock before us
            return target
        tmp = ws.models / f".{DEMO_NAME}.partial"
        shutil.rmtree(tmp, ignore_errors=True)  # a killed builder's leftovers
        build(tmp)
        _write_stamp(tmp)
        _install(tmp, target)
    return target


def require(name: str, ws: Workspace | None = None) -> Path:
    """The demo model folder for a process that only loads it (a training rank): never builds,
    because a build inside a running torch.distributed group writes only part of the files."""
    ws = ws or Workspace.open()
    target = _target(name, ws)
    if not is_complete(target):
        raise NotFound(Msg("model.builtin_missing", name=name, path=str(target)), Msg("model.builtin_missing.hint"))
    return target


def is_complete(folder: Path) -> bool:
    """True only for a folder that a finished build stamped, with every stamped file unchanged."""
    try:
        stamp = json.loads((folder / STAMP).read_text())
        files = stamp["files"]
        return stamp.get("name") == DEMO_NAME and stamp.get("version") == VERSION and bool(files) and all(
            _digest(folder / f) == h for f, h in files.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _target(name: str, ws: Workspace) -> Path:
    if name != BUILTIN_PREFIX + DEMO_NAME:
        raise NotFound(Msg("model.builtin_unknown", name=repr(name)), Msg("model.builtin_unknown.hint", builtin=BUILTIN_PREFIX + DEMO_NAME))
    return builtin_path(name, ws)


@contextlib.contextmanager
def _locked(ws: Workspace):
    ws.models.mkdir(parents=True, exist_ok=True)
    with open(ws.models / f".{DEMO_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released by the kernel if the holder dies
        yield


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_stamp(folder: Path) -> None:
    """Written last: its presence (with matching digests) is what makes a folder complete."""
    files = {p.name: _digest(p) for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / STAMP).write_text(json.dumps({"name": DEMO_NAME, "version": VERSION, "files": files}, indent=1))
    (folder / STAMP).chmod(0o644)


def _install(tmp: Path, target: Path) -> None:
    """Move the finished build into place. Whatever stood there (a half-built or foreign folder,
    e.g. tokenizer files alone) is moved aside first and then deleted: never trusted, never in the way."""
    old = None
    if target.exists() or target.is_symlink():
        old = target.with_name(f".{DEMO_NAME}.replaced-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def main(argv=None) -> int:
    """`python -m core.demo_model [--workspace WS]`: prepare the demo model (the launcher's step
    before a job's ranks start, and the GUI's build at launch)."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--workspace", default=None)
    args = ap.parse_args(argv)
    ws = Workspace.open(args.workspace) if args.workspace else Workspace.open()
    print(f"[danlu] preparing the built-in demo model in {ws.models / DEMO_NAME}", flush=True)
    print(f"[danlu] demo model ready: {ensure_demo_model(ws)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
