"""Schema 3: every column keeps one type, written and read (Parquet and CSV alike)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from inforidge.config.settings import bandwidth_columns
from inforidge.measure.rows import COLUMNS, WHOLE_CURVE
from inforidge.results.table import (
    CATEGORY_COLUMNS,
    FLOAT_COLUMNS,
    INTEGER_COLUMNS,
    SCHEMA_VERSION,
    ResultsTable,
    normalize_columns,
    read_csv_table,
    read_run_table,
    read_table_metadata,
    sigma_label,
)


def _rows() -> list[dict]:
    common = {"step": 10, "split": "id", "seed": 0, "n_samples": 50, "alpha": 1.0, "base": 2.0,
              "kernel": "gaussian", "final_norm": "post", "label_view": "embedding_output", "n_permutations": 20,
              "null": "permutation"}
    return [
        {**common, **bandwidth_columns(1.0), "metric": "predictive_information", "layer": 3, "value": 0.25},
        {**common, **bandwidth_columns("median"), "metric": "robustness_predictive_information", "layer": 3,
         "value": 0.5, "flag": "degenerate_gram"},
        {**common, **bandwidth_columns(1.0), "metric": "label_entropy", "layer": WHOLE_CURVE, "value": 3.7},
        {"step": 10, "split": "id", "metric": "residual_scale", "layer": 2, "value": 1.5, "sigma": None,
         "kernel": None, "n_permutations": None},
    ]


def test_written_and_read_tables_have_one_type_per_column(tmp_path):
    table = ResultsTable(tmp_path)
    table.append(_rows())
    table.compact()
    frame = read_run_table(tmp_path)
    assert list(frame.columns[:len(COLUMNS)]) == COLUMNS
    for c in INTEGER_COLUMNS:
        assert str(frame[c].dtype) == "Int64", c
    for c in FLOAT_COLUMNS:
        assert frame[c].dtype == "float64", c
    assert set(INTEGER_COLUMNS + FLOAT_COLUMNS + CATEGORY_COLUMNS) <= set(COLUMNS)
    for c in CATEGORY_COLUMNS:
        assert isinstance(frame[c].dtype, pd.CategoricalDtype), c
    by_metric = frame.set_index(frame["metric"].astype(str))
    assert by_metric.loc["predictive_information", "sigma"] == 1.0
    assert by_metric.loc["predictive_information", "sigma_rule"] == "fixed"
    assert math.isnan(by_metric.loc["robustness_predictive_information", "sigma"])
    assert by_metric.loc["robustness_predictive_information", "sigma_rule"] == "median"
    assert pd.isna(by_metric.loc["label_entropy", "layer"])  # NA, not a -1 sentinel
    assert pd.isna(by_metric.loc["residual_scale", "sigma_rule"]) and pd.isna(by_metric.loc["residual_scale", "n_permutations"])
    assert read_table_metadata(tmp_path / "results.parquet")["schema_version"] == SCHEMA_VERSION == 3


def test_csv_reads_back_equal_to_parquet(tmp_path):
    table = ResultsTable(tmp_path)
    table.append(_rows())
    table.compact()
    pd.testing.assert_frame_equal(read_csv_table(tmp_path / "results.csv"), read_run_table(tmp_path))


def test_parts_with_different_categories_join_without_losing_values(tmp_path):
    table = ResultsTable(tmp_path)
    rows = _rows()
    table.append(rows[:1])
    table.append([{**rows[1], "split": "ood"}])
    frame = ResultsTable(tmp_path).frame  # read from the two part files
    assert sorted(frame["split"].astype(str)) == ["id", "ood"]
    assert set(frame["split"].cat.categories) == {"id", "ood"}


def test_categorical_columns_keep_every_value_as_text():
    frame = normalize_columns(pd.DataFrame([{"step": 1, "split": 3, "metric": "m", "layer": 0, "value": 1.0,
                                             "flag": None}, {"step": 1, "split": "id", "metric": "m", "layer": 1,
                                                             "value": 2.0, "flag": "flat_curve"}]))
    assert frame["split"].astype(object).tolist() == ["3", "id"]
    assert pd.isna(frame["flag"][0]) and frame["flag"][1] == "flat_curve"


def test_a_schema_2_table_reads_in_schema_3_types():
    legacy = pd.DataFrame([
        {"step": 5, "split": "id", "metric": "predictive_information", "layer": 2, "value": 0.1, "sigma": "1.0"},
        {"step": 5, "split": "id", "metric": "robustness_predictive_information", "layer": 2, "value": 0.2,
         "sigma": "median"},
        {"step": 5, "split": "id", "metric": "label_entropy", "layer": -1, "value": 3.0, "sigma": "1.0"},
        {"step": 5, "split": "id", "metric": "attention_signal", "layer": 1, "value": 0.3, "sigma": "None"},
    ])
    frame = normalize_columns(legacy)
    assert frame["sigma"].tolist()[0] == 1.0 and math.isnan(frame["sigma"][1]) and math.isnan(frame["sigma"][3])
    assert frame["sigma_rule"].astype(object).tolist()[:2] == ["fixed", "median"] and pd.isna(frame["sigma_rule"][3])
    assert pd.isna(frame["layer"][2]) and frame["layer"][0] == 2
    assert sigma_label(frame).tolist() == ["1.0", "median", "1.0", ""]


@pytest.mark.parametrize(("column", "value", "match"), [
    ("layer", 2.5, "layer|cast|non-equivalent"),
    ("sigma", "wide", "sigma must be a number"),
    ("value", "big", "Unable to parse|value"),
])
def test_a_value_that_does_not_fit_its_column_is_an_error(column, value, match):
    row = {"step": 1, "split": "id", "metric": "m", "layer": 1, "value": 0.0, column: value}
    with pytest.raises((ValueError, TypeError), match=match):
        normalize_columns(pd.DataFrame([row]))


def test_bandwidth_columns():
    assert bandwidth_columns(0.5) == {"sigma": 0.5, "sigma_rule": "fixed"}
    median = bandwidth_columns("median", "target_sigma")
    assert math.isnan(median["target_sigma"]) and median["target_sigma_rule"] == "median"
    with pytest.raises(ValueError, match="positive number or 'median'"):
        bandwidth_columns("mean")


def test_readme_shows_the_schema_of_the_code():
    """README's "Results schema" table is schema_markdown() (regenerate it from there)."""
    from pathlib import Path

    from inforidge.results.table import schema_markdown

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- schema:start -->\n", "<!-- schema:end -->"
    assert start in text and end in text
    assert text[text.index(start) + len(start):text.index(end)] == schema_markdown()
