"""ResultsTable.drop and atomic writes."""

import pandas as pd
import pytest

from inforidge.results.table import ResultsTable, atomic_write, write_text_atomic


def _rows():
    return [{"step": s, "split": "id", "metric": m, "layer": -1, "value": 1.0, "seed": 0, "sigma": "1.0"}
            for s in (0, 8) for m in ("ridge_layer", "ridge_p_value", "predictive_information")]


def test_drop_by_metric_prefix_and_step_is_saved(tmp_path):
    table = ResultsTable(tmp_path)
    table.append(_rows())
    assert table.drop(metric_prefix="ridge_", step=8) == 2
    on_disk = ResultsTable(tmp_path).frame
    for frame in (table.frame, on_disk):
        kept = set(zip(frame["step"], frame["metric"], strict=True))
        assert kept == {(0, "ridge_layer"), (0, "ridge_p_value"), (0, "predictive_information"),
                        (8, "predictive_information")}
    assert table.drop(metric_prefix="ridge_") == 2
    assert set(ResultsTable(tmp_path).frame["metric"]) == {"predictive_information"}
    assert table.drop(metric_prefix="attention_") == 0
    assert ResultsTable().drop(metric_prefix="ridge_") == 0  # empty, in memory


def test_atomic_write_leaves_the_old_file_and_no_temp_file_on_an_exception(tmp_path):
    path = tmp_path / "report.md"
    write_text_atomic(path, "old")

    def half_then_fail(p):
        p.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
    atomic_write(path, lambda p: pd.DataFrame({"a": [1]}).to_csv(p, index=False))
    assert path.read_text() == "a\n1\n"
