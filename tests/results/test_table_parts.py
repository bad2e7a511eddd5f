"""Appends write part files (no rewrite of the whole table); compaction, resume after a crash
between compaction steps, and the provenance metadata."""

import pandas as pd

from inforidge import __version__
from inforidge.results import table as table_mod
from inforidge.results.table import (
    PARTS,
    SCHEMA_VERSION,
    ResultsTable,
    config_hash,
    has_table,
    read_run_table,
    read_table_metadata,
    remove_table,
)


def _rows(step, n=3):
    return [{"step": step, "split": "id", "metric": "predictive_information", "layer": i, "value": float(step + i),
             "seed": 0, "sigma": 1.0} for i in range(n)]


def test_appends_write_parts_and_compact_joins_them(tmp_path):
    t = ResultsTable(tmp_path, config={"a": 1})
    for step in range(4):
        t.append(_rows(step))
    assert not (tmp_path / "results.parquet").exists()  # no rewrite per append
    assert len(list((tmp_path / PARTS).glob("part-*.parquet"))) == 4 and has_table(tmp_path)
    assert len(read_run_table(tmp_path)) == 12  # a reader sees the parts
    t.compact()
    assert not (tmp_path / PARTS).exists()
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(df["step"].unique()) == [0, 1, 2, 3] and len(df) == 12
    assert len(pd.read_csv(tmp_path / "results.csv")) == 12
    meta = read_table_metadata(tmp_path / "results.parquet")
    assert meta["schema_version"] == SCHEMA_VERSION and meta["inforidge_version"] == __version__
    assert meta["config_hash"] == config_hash({"a": 1}) and meta["parts_upto"] == 4 and "command" in meta
    # Resume: the reopened table has everything; new appends continue the part numbering.
    again = ResultsTable(tmp_path)
    again.append(_rows(4))
    assert (tmp_path / PARTS / "part-000005.parquet").exists()
    assert len(ResultsTable(tmp_path).frame) == 15 and ResultsTable(tmp_path).steps() == {0, 1, 2, 3, 4}


def test_a_crash_between_compaction_and_part_deletion_counts_nothing_twice(tmp_path, monkeypatch):
    t = ResultsTable(tmp_path)
    for step in range(3):
        t.append(_rows(step))
    monkeypatch.setattr(table_mod.Path, "unlink", lambda self, missing_ok=False: None)  # the deletes never happen
    monkeypatch.setattr(table_mod.Path, "rmdir", lambda self: None)
    t.compact()
    monkeypatch.undo()
    assert len(list((tmp_path / PARTS).glob("part-*.parquet"))) == 3  # left behind
    f = ResultsTable(tmp_path).frame
    assert len(f) == 9 and not f.duplicated(["step", "layer"]).any()


def test_compaction_every_so_many_parts_and_empty_tables(tmp_path, monkeypatch):
    monkeypatch.setattr(table_mod, "COMPACT_EVERY", 3)
    t = ResultsTable(tmp_path)
    for step in range(7):
        t.append(_rows(step, 1))
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 6  # compacted after parts 3 and 6
    assert len(list((tmp_path / PARTS).glob("*.parquet"))) == 1 and len(ResultsTable(tmp_path).frame) == 7
    empty = tmp_path / "empty"
    ResultsTable(empty).compact()
    assert not has_table(empty) and not (empty / "results.parquet").exists()
    remove_table(tmp_path)
    assert not has_table(tmp_path) and ResultsTable(tmp_path).frame.empty


def test_drop_compacts(tmp_path):
    t = ResultsTable(tmp_path)
    t.append(_rows(0))
    t.append([{**r, "metric": "ridge_layer"} for r in _rows(1)])
    assert t.drop(metric_prefix="ridge_") == 3
    assert set(pd.read_parquet(tmp_path / "results.parquet")["metric"]) == {"predictive_information"}
    assert set(ResultsTable(tmp_path).frame["metric"]) == {"predictive_information"}
