"""The analysis stages share one extraction of the final model; the callback hands its states
to extra row builders; force replaces a stage's rows through ResultsTable.drop."""

from types import SimpleNamespace

import pytest

from inforidge.config.loading import load_config
from inforidge.config.settings import MeasureSettings
from inforidge.measure.predictive import Evaluator
from inforidge.measure.rows import KEY
from inforidge.models.parts import locate_parts
from inforidge.pipelines.analyze import STAGES, run_analyses
from inforidge.pipelines.tracking import InfoRidgeCallback
from inforidge.results.table import ResultsTable


class CountingEvaluator(Evaluator):
    extractions = 0

    def extract(self, parts):
        self.extractions += 1
        return super().extract(parts)


@pytest.fixture()
def setup(tiny_task, word_tokenizer, tiny_gpt2, tmp_path, tiny_overrides):
    config = load_config(None, tiny_overrides(tmp_path, **{"tracking.ridge_bootstrap": 5}))
    ev = CountingEvaluator(word_tokenizer, {"id": tiny_task.splits["test_id"], "ood": tiny_task.splits["test_ood"]},
                           MeasureSettings(n_samples=8, seeds=[0, 1], n_permutations=2))
    parts = locate_parts(tiny_gpt2)
    table = ResultsTable(tmp_path / "run")
    table.append(ev.measure(parts, 4))
    ev.extractions = 0
    return config, ev, parts, table


def test_ridge_and_kernel_stages_extract_the_final_model_once(setup, tiny_task, word_tokenizer):
    config, ev, parts, table = setup
    out = run_analyses(config, lambda: parts, word_tokenizer, tiny_task, ev, table, stages=["ridge", "kernels"])
    assert ev.extractions == 1
    df = table.frame
    assert out.rows > 0 and df["metric"].str.startswith("ridge_").any()
    assert df["metric"].str.startswith("kernel_ablation_").any()
    # force: the stages' rows are replaced, not duplicated, and the file holds the same table
    n = len(df)
    run_analyses(config, lambda: parts, word_tokenizer, tiny_task, ev, table, stages=["ridge", "kernels"], force=True)
    assert ev.extractions == 2 and len(table.frame) == n and not table.frame.duplicated(KEY).any()
    assert len(ResultsTable(table.folder).frame) == n


def test_unknown_stage_is_named_with_the_choices(setup, tiny_task, word_tokenizer):
    config, ev, parts, table = setup
    with pytest.raises(ValueError, match="ridg.*choose from ridge, attention, scaling, kernels"):
        run_analyses(config, lambda: parts, word_tokenizer, tiny_task, ev, table, stages=["ridg"])
    assert list(STAGES) == ["ridge", "attention", "scaling", "kernels"]


def test_callback_gives_its_extracted_states_to_extra_row_builders(setup, tiny_gpt2):
    _, ev, _, _ = setup
    seen = []

    def builder(states, step):
        seen.append((states, step))
        return [{"step": step, "split": "id", "metric": "extra", "layer": -1, "value": 1.0}]

    table = ResultsTable()
    cb = InfoRidgeCallback(ev, table, steps=[3], extra_rows=[builder])
    cb._maybe_measure(None, SimpleNamespace(global_step=3, is_world_process_zero=True, log_history=[], epoch=None),
                     None, tiny_gpt2)
    assert ev.extractions == 1 and len(seen) == 1 and seen[0][1] == 3
    assert set(seen[0][0]) == {"id", "ood"}
    df = table.frame
    assert (df["metric"] == "extra").sum() == 1 and (df["metric"] == "predictive_information").any()


def test_an_analysis_that_cannot_run_is_a_warning_a_row_and_a_report_line(setup, tiny_task, word_tokenizer, caplog):
    import copy
    import logging

    from inforidge.report.run import skipped_lines

    config, ev, parts, table = setup
    task = copy.deepcopy(tiny_task)
    for split in ("test_id", "test_ood"):
        for r in task.splits[split]:
            r.pop("signal_positions")
    ev.subsample = lambda split, seed=None: [r for r in task.splits["test_id"]][:8]  # records without positions
    with caplog.at_level(logging.WARNING, logger="inforidge.pipelines.analyze"):
        run_analyses(config, lambda: parts, word_tokenizer, task, ev, table, stages=["attention"])
    assert any("signal_positions" in m for m in caplog.messages)
    skipped = table.frame[table.frame["metric"] == "skipped_attention"]
    assert len(skipped) == 1 and "signal_positions" in skipped["flag"].iloc[0] and skipped["value"].isna().all()
    assert any(line.startswith("- skipped: attention because attention to signal tokens skipped")
               for line in skipped_lines(table.frame))
    run_analyses(config, lambda: parts, word_tokenizer, task, ev, table, stages=["attention"], force=True)
    assert (table.frame["metric"] == "skipped_attention").sum() == 1  # replaced, not duplicated
