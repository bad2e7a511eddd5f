"""One way to call the Evaluator: a PreTrainedModel or its parts; splits as a list of dicts, a
pandas DataFrame or a datasets.Dataset; the same rows each way."""

import pandas as pd
import pytest

from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.models.parts import locate_parts


def _rows(ev, model):
    f = pd.DataFrame(ev.measure(model, step=0))
    return f.sort_values(["split", "seed", "metric", "final_norm", "layer"]).reset_index(drop=True)


def test_model_or_parts_and_three_kinds_of_splits(tiny_gpt2, word_tokenizer, tiny_task):
    import datasets

    recs = tiny_task.splits["test_id"][:30]
    st = MeasureSettings(n_samples=12, seeds=[0], n_permutations=2, robustness_sigma=None)
    base = _rows(Evaluator(word_tokenizer, {"id": recs}, st), locate_parts(tiny_gpt2))
    for split in (pd.DataFrame(recs), datasets.Dataset.from_list(recs)):
        ev = Evaluator(word_tokenizer, {"id": split}, st)
        pd.testing.assert_frame_equal(_rows(ev, tiny_gpt2), base)  # a PreTrainedModel, not ModelParts


def test_other_inputs_name_what_is_accepted(word_tokenizer, tiny_task):
    with pytest.raises(TypeError, match="list of dicts, a pandas DataFrame or a datasets.Dataset"):
        Evaluator(word_tokenizer, {"id": "prompts.jsonl"}, MeasureSettings(n_samples=2, seeds=[0]))
    ev = Evaluator(word_tokenizer, {"id": tiny_task.splits["test_id"][:10]}, MeasureSettings(n_samples=4, seeds=[0]))
    with pytest.raises(TypeError, match="PreTrainedModel"):
        ev.measure(object())
