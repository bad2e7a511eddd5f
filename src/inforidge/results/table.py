"""The tidy results table: one row per (step, split, metric, layer, seed, settings).

Rows are appended as they are produced and the table is rewritten atomically (temp file +
rename) as Parquet and CSV, so an interrupted run loses nothing and can resume.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from inforidge.measure.rows import COLUMNS


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``: readers
    see the old file or the new one, never a partial one; on an exception the temp file is removed."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`); returns ``path``."""
    atomic_write(path, lambda p: p.write_text(text))
    return path


class ResultsTable:
    """A long-format table backed by ``<folder>/results.parquet`` and ``results.csv``.

    Extra columns (e.g. ``checkpoint`` or ``weight_hash``) are kept; missing standard
    columns are filled with NA.
    """

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else None
        self._frames: list[pd.DataFrame] = []
        if self.parquet_path is not None and self.parquet_path.exists():
            self._frames.append(pd.read_parquet(self.parquet_path))

    @property
    def parquet_path(self) -> Path | None:
        return self.folder / "results.parquet" if self.folder else None

    @property
    def frame(self) -> pd.DataFrame:
        if not self._frames:
            return pd.DataFrame(columns=COLUMNS)
        if len(self._frames) > 1:
            self._frames = [pd.concat(self._frames, ignore_index=True)]
        return self._frames[0]

    def steps(self) -> set[int]:
        """Steps that already have rows (used to skip finished work on resume)."""
        f = self.frame
        return set() if f.empty else {int(s) for s in f["step"].unique()}

    def append(self, rows: Iterable[dict]) -> None:
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        for c in COLUMNS:
            if c not in new:
                new[c] = pd.NA
        new = new[COLUMNS + [c for c in new.columns if c not in COLUMNS]]
        new["sigma"] = new["sigma"].astype(str)
        self._frames.append(new)
        self.save()

    def drop(self, *, metric_prefix: str, step: int | None = None) -> int:
        """Remove the rows whose metric starts with ``metric_prefix`` (at ``step`` only, when
        given) and save the table; returns the number of rows removed."""
        frame = self.frame
        if frame.empty:
            return 0
        gone = frame["metric"].astype(str).str.startswith(metric_prefix)
        if step is not None:
            gone &= frame["step"] == step
        if not gone.any():
            return 0
        self._frames = [frame[~gone].reset_index(drop=True)]
        self.save()
        return int(gone.sum())

    def save(self) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        f = self.frame
        atomic_write(self.folder / "results.parquet", lambda p: f.to_parquet(p, index=False))
        atomic_write(self.folder / "results.csv", lambda p: f.to_csv(p, index=False))


def read_run_table(run_dir: Path) -> pd.DataFrame:
    """The results table of a run folder (``run_dir/results.parquet``)."""
    return pd.read_parquet(run_dir / "results.parquet")
