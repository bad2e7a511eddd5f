"""extract.batching: the one pad, pad id, special-token template and eval mode."""

import pytest
import torch
from torch import nn

from inforidge.extract.batching import (
    eval_mode,
    pad,
    pad_id,
    special_prefix_length,
    special_template,
)

SEQS = [[5, 6, 7], [8], [9, 10]]


def test_pad_left_and_right_equal_manual_padding():
    ids, mask = pad(SEQS, 0, "left")
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 9, 10]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 1, 1]]
    ids, mask = pad(SEQS, 4, "right")
    assert ids.tolist() == [[5, 6, 7], [8, 4, 4], [9, 10, 4]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    assert ids.dtype == mask.dtype == torch.long
    with pytest.raises(ValueError, match="padding side"):
        pad(SEQS, 0, "middle")


def test_pad_equals_the_tokenizers_own_padding(word_tokenizer):
    texts = ["3 + 4 =", "1 ="]
    for side in ("left", "right"):
        word_tokenizer.padding_side = side
        try:
            enc = word_tokenizer(texts, return_tensors="pt", padding=True)
        finally:
            word_tokenizer.padding_side = "left"
        ids, mask = pad(word_tokenizer(texts)["input_ids"], word_tokenizer.pad_token_id, side)
        assert torch.equal(ids, enc["input_ids"]) and torch.equal(mask, enc["attention_mask"])


class _Tok:
    def __init__(self, pad=None, eos=None, unk=None):
        self.pad_token_id, self.eos_token_id, self.unk_token_id = pad, eos, unk


def test_pad_id_falls_back_pad_eos_unk_config_zero():
    class Model(nn.Module):
        config = type("C", (), {"pad_token_id": 7})()

    assert pad_id(_Tok(1, 2, 3), Model()) == 1
    assert pad_id(_Tok(None, 2, 3), Model()) == 2
    assert pad_id(_Tok(None, None, 3), Model()) == 3
    assert pad_id(_Tok(), Model()) == 7
    assert pad_id(_Tok()) == 0


def test_special_template_of_the_word_tokenizer(word_tokenizer):
    pre, post = special_template(word_tokenizer, "3 + 4")
    plain = word_tokenizer("3 + 4", add_special_tokens=False)["input_ids"]
    assert pre + plain + post == word_tokenizer("3 + 4")["input_ids"]
    assert special_prefix_length(word_tokenizer, "3 + 4") == len(pre)


def test_eval_mode_restores_the_training_flag_even_on_errors():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    model.train()
    with eval_mode(model) as m:
        assert m is model and not model.training and not model[1].training
    assert model.training and model[1].training
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert model.training
    model.eval()
    with eval_mode(model):
        pass
    assert not model.training
