"""The Evaluator refuses prompts its tokenizer cannot read (mostly the unknown token)."""

import pytest

from inforidge.config.settings import MeasureSettings
from inforidge.measure.layer_suite import measure_layers
from inforidge.measure.predictive import Evaluator
from inforidge.tasks.tokenize import build_word_tokenizer


def test_mostly_unknown_prompts_are_refused_naming_the_split():
    tok = build_word_tokenizer(["a", "b"])
    records = [{"prompt": "qq rr a", "target": "b"}] * 4
    with pytest.raises(ValueError, match=r"prompts of split 'ood': 8 of 12 tokens \(67%\)"):
        Evaluator(tok, {"id": [{"prompt": "a b", "target": "a"}] * 4, "ood": records},
                  MeasureSettings(n_samples=4, seeds=[0]))
    ev = Evaluator(tok, {"ood": records}, MeasureSettings(n_samples=4, seeds=[0]), allow_unknown_tokens=True)
    assert len(ev.subsample("ood")) == 4


def test_the_layer_suite_refuses_text_its_tokenizer_cannot_read(tiny_gpt2):
    tok = build_word_tokenizer(["a", "b"])
    with pytest.raises(ValueError, match=r"builtin: 9 of 9 tokens \(100%\) are the unknown token"):
        measure_layers(tiny_gpt2, tok, ["the quick fox", "jumps over the", "lazy dog today"], split="builtin")
