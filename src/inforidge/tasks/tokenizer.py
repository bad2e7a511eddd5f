"""A word-level tokenizer for tasks with a closed vocabulary (built with `tokenizers`)."""

from __future__ import annotations

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

PAD, UNK, BOS = "[PAD]", "[UNK]", "[BOS]"


def build_word_tokenizer(vocabulary: list[str]) -> PreTrainedTokenizerFast:
    """Whitespace-split word-level tokenizer: every word of ``vocabulary`` is one token.

    Special tokens: [PAD] (id 0), [UNK] (1), [BOS] (2, also used as eos). Padding side is
    left, the convention for decoder-only models. Save it with ``save_pretrained`` beside
    the model; ``AutoTokenizer.from_pretrained`` loads it back.
    """
    words = list(dict.fromkeys(vocabulary))
    if not words:
        raise ValueError("the vocabulary is empty; a word-level tokenizer needs at least one word")
    clash = [w for w in words if w in (PAD, UNK, BOS) or any(c.isspace() for c in w)]
    if clash:
        raise ValueError(f"vocabulary words must be non-special and contain no whitespace: {clash[:5]}")
    vocab = {tok: i for i, tok in enumerate([PAD, UNK, BOS, *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        unk_token=UNK,
        bos_token=BOS,
        eos_token=BOS,
        padding_side="left",
    )
