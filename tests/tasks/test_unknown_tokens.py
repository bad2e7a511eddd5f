"""Text the tokenizer cannot read is reported, and refused when mostly unknown."""

import json
import logging

import pytest
from transformers import GPT2TokenizerFast

from inforidge.tasks.tokenize import (
    build_word_tokenizer,
    check_unknown_tokens,
    count_unknown_tokens,
)


@pytest.fixture(scope="module")
def tok():
    return build_word_tokenizer(["a", "b", "c"])


def test_count_is_the_share_of_unknown_tokens(tok):
    counts = count_unknown_tokens(tok, ["a b zzz", "c yyy xxx"])
    assert (counts.n_unknown, counts.n_tokens) == (3, 6) and counts.share == 0.5


def test_mostly_unknown_text_is_refused_unless_allowed(tok, caplog):
    texts = ["zzz yyy a", "www b vvv"]
    with pytest.raises(ValueError, match=r"builtin corpus: 4 of 6 tokens \(67%\) are the unknown token '\[UNK\]'"):
        check_unknown_tokens(tok, texts, "builtin corpus")
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"):
        assert check_unknown_tokens(tok, texts, "builtin corpus", allow=True).n_unknown == 4
    assert "67%" in caplog.text


def test_some_unknown_tokens_warn_and_none_stay_quiet(tok, caplog):
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"):
        check_unknown_tokens(tok, ["a b c a b c a b c zzz"], "prompts")
    assert "1 of 10 tokens (10%)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="inforidge.tasks.tokenize"):
        check_unknown_tokens(tok, ["a b c"] * 7, "prompts")
    assert caplog.text == ""


def test_byte_level_tokenizers_read_everything(tmp_path):
    vocab = {"<|endoftext|>": 0, "a": 1, "b": 2}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    gpt2 = GPT2TokenizerFast(vocab_file=str(tmp_path / "vocab.json"), merges_file=str(tmp_path / "merges.txt"))
    gpt2.unk_token = None
    assert count_unknown_tokens(gpt2, ["ab"]).n_unknown == 0
