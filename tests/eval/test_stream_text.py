"""The chat's streamed text when a character's bytes are split across tokens (core.engine.inference.Generation):
held back until the token that completes it, and an answer cut short (the token limit, Stop) in the middle of
a character ends at the last complete one. The tokens are fed one at a time, no model needed."""
from __future__ import annotations

import pytest


def streamed(tok, ids: list[int], ended_by_model: bool = False) -> list[str]:
    """The deltas Generation yields for `ids` as its decode loop's tokens; `ended_by_model`: the end token
    came after them (else the token limit or Stop cut the answer there)."""
    from core.engine.inference import Generation

    class Fed(Generation):
        def __init__(self):
            self.tok, self.stats = tok, {}

        def _decode_loop(self):
            yield from ids
            self.ended_by_model = ended_by_model
    return list(Fed()._tokens_as_text())


@pytest.fixture(scope="module")
def byte_fallback(demo_model_dir):
    """The demo model's tokenizer: SentencePiece with byte fallback (Llama, Mistral): a character outside its
    vocabulary is one <0xNN> token per byte."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(demo_model_dir)


@pytest.fixture(scope="module")
def byte_level():
    """A byte-level BPE (GPT-2, Qwen, Llama 3) learned from English only: a CJK character or an emoji is split
    over several of its tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(["hello world, the furnace is hot"] * 10,
                            trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok)


@pytest.mark.parametrize("kind", ["byte_fallback", "byte_level"])
@pytest.mark.parametrize("text", ["你好，世界", "hot 😀 furnace", "é"])
def test_a_character_split_across_tokens_shows_whole_and_a_cut_one_not_at_all(request, kind, text):
    tok = request.getfixturevalue(kind)
    ids = tok.encode(text, add_special_tokens=False)
    assert any("\ufffd" in tok.decode([i]) for i in ids)  # a token holding part of a character
    deltas = streamed(tok, ids)
    assert "".join(deltas) == text and not any("\ufffd" in d for d in deltas), deltas
    # cut one token short, in the middle of the last multi-byte character: the answer ends before it; it
    # read "��������������" for 你好，世界 (every byte of the run), or ended in "\ufffd"
    whole = text.split(" furnace")[0]
    cut = ids[:len(tok.encode(whole, add_special_tokens=False)) - 1]
    said = "".join(streamed(tok, cut))
    assert "\ufffd" not in said and said == whole[:-1], (said, whole)


def test_an_invalid_byte_sequence_the_model_wrote_is_shown_as_the_tokenizer_shows_it(byte_fallback):
    """The model's own end token after half a character: the model wrote invalid UTF-8, not a cut."""
    tok = byte_fallback
    ids = tok.encode("a你", add_special_tokens=False)[:-1]
    assert "".join(streamed(tok, ids, ended_by_model=True)) == tok.decode(ids) == "a\ufffd\ufffd"
