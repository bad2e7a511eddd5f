"""The Evaluator refuses prompts its tokenizer cannot read (mostly the unknown token)."""

import pytest

from inforidge.config.settings import MeasureSettings
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
