"""The tidy results table: one row per (step, split, metric, layer, seed, settings).

Rows are written as they are produced, each append as one small part file
(``results.parts/part-000001.parquet``, atomic: temp file + rename), so an interrupted run
loses nothing and an append costs the new rows only, not a rewrite of the whole table (a full
rewrite took 0.5 s per append at 95 k rows). :meth:`ResultsTable.compact` joins everything into
``results.parquet`` and ``results.csv`` (every pipeline does so when it finishes, and every
``COMPACT_EVERY`` parts); ``results.parquet`` records which parts it holds, so a crash between
writing it and deleting the parts double-counts nothing. Reading a folder
(:class:`ResultsTable`, :func:`read_run_table`) takes ``results.parquet`` plus any newer parts.
The Parquet metadata (key ``inforidge``) holds the schema version and the provenance
(:func:`provenance`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from inforidge import __version__
from inforidge.measure.rows import COLUMNS

SCHEMA_VERSION = 2
"""Version of the table's layout (columns and their meaning); 2: part files + provenance metadata."""

PARTS = "results.parts"

COMPACT_EVERY = 25
"""Parts after which an append also compacts (bounds the number of small files of a long sweep)."""

_META_KEY = b"inforidge"


def _git_commit() -> str | None:
    """The commit of the InfoRidge checkout this code runs from, when it is one (None otherwise)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def config_hash(config: dict) -> str:
    """sha256 (16 hex characters) of a config as canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def provenance(config: dict | None = None) -> dict:
    """What a reader needs to trust a table later: schema and InfoRidge versions, the git commit
    (when running from a checkout), the command line and the config's hash."""
    return {"schema_version": SCHEMA_VERSION, "inforidge_version": __version__, "git_commit": _git_commit(),
            "command": " ".join(sys.argv), "config_hash": None if config is None else config_hash(config)}


def read_table_metadata(path: str | Path) -> dict:
    """The ``inforidge`` metadata of a results.parquet (empty for tables written before it existed)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[_META_KEY]) if _META_KEY in meta else {}


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
    """A long-format table backed by ``<folder>/results.parquet`` / ``results.csv`` and the part
    files of the appends not yet compacted (see the module docstring).

    Extra columns (e.g. ``checkpoint`` or ``weight_hash``) are kept; missing standard
    columns are filled with NA. ``config``: the settings that produced the rows (hashed into
    the provenance metadata).
    """

    def __init__(self, folder: str | Path | None = None, *, config: dict | None = None):
        self.folder = Path(folder) if folder is not None else None
        self._frames: list[pd.DataFrame] = []
        self._config = config
        self._compacted_upto = 0  # parts with this index or lower are in results.parquet
        self._next_part = 1
        if self.folder is None:
            return
        if self.parquet_path.exists():
            self._frames.append(pd.read_parquet(self.parquet_path))
            self._compacted_upto = int(read_table_metadata(self.parquet_path).get("parts_upto", 0))
        for index, path in self._parts():
            if index > self._compacted_upto:
                self._frames.append(pd.read_parquet(path))
            self._next_part = max(self._next_part, index + 1)
        self._next_part = max(self._next_part, self._compacted_upto + 1)

    @property
    def parquet_path(self) -> Path | None:
        return self.folder / "results.parquet" if self.folder else None

    def _parts(self) -> list[tuple[int, Path]]:
        folder = self.folder / PARTS
        if not folder.is_dir():
            return []
        return sorted((int(p.stem.split("-")[1]), p) for p in folder.glob("part-*.parquet"))

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
        """Add rows; with a folder, write them as one part file (and compact every COMPACT_EVERY parts)."""
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        for c in COLUMNS:
            if c not in new:
                new[c] = pd.NA
        new = new[COLUMNS + [c for c in new.columns if c not in COLUMNS]]
        new["sigma"] = new["sigma"].astype(str)
        self._frames.append(new)
        if self.folder is None:
            return
        folder = self.folder / PARTS
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{self._next_part:06d}.parquet"
        atomic_write(path, lambda p: new.to_parquet(p, index=False))
        self._next_part += 1
        if self._next_part - 1 - self._compacted_upto >= COMPACT_EVERY:
            self.compact()

    def drop(self, *, metric_prefix: str, step: int | None = None) -> int:
        """Remove the rows whose metric starts with ``metric_prefix`` (at ``step`` only, when
        given) and compact the table; returns the number of rows removed."""
        frame = self.frame
        if frame.empty:
            return 0
        gone = frame["metric"].astype(str).str.startswith(metric_prefix)
        if step is not None:
            gone &= frame["step"] == step
        if not gone.any():
            return 0
        self._frames = [frame[~gone].reset_index(drop=True)]
        self.compact()
        return int(gone.sum())

    def compact(self) -> None:
        """Write the whole table as results.parquet (with provenance metadata) and results.csv,
        atomically, then delete the part files it now holds."""
        if self.folder is None or (not self._frames and not has_table(self.folder)):
            return  # nothing measured: no empty table left behind
        self.folder.mkdir(parents=True, exist_ok=True)
        f = self.frame
        upto = self._next_part - 1
        meta = {**provenance(self._config), "parts_upto": upto}

        def write_parquet(p: Path) -> None:
            table = pa.Table.from_pandas(f, preserve_index=False)
            schema_meta = dict(table.schema.metadata or {})
            schema_meta[_META_KEY] = json.dumps(meta).encode()
            pq.write_table(table.replace_schema_metadata(schema_meta), p)

        atomic_write(self.parquet_path, write_parquet)
        atomic_write(self.folder / "results.csv", lambda p: f.to_csv(p, index=False))
        self._compacted_upto = upto
        for index, path in self._parts():
            if index <= upto:
                path.unlink(missing_ok=True)
        parts = self.folder / PARTS
        if parts.is_dir() and not any(parts.iterdir()):
            parts.rmdir()

    save = compact  # the name earlier versions used


def has_table(folder: str | Path) -> bool:
    """Whether ``folder`` holds results (a compacted table or parts of one)."""
    folder = Path(folder)
    return (folder / "results.parquet").exists() or any((folder / PARTS).glob("part-*.parquet"))


def remove_table(folder: str | Path) -> None:
    """Delete the results of ``folder`` (results.parquet, results.csv and any parts)."""
    folder = Path(folder)
    for name in ("results.parquet", "results.csv"):
        (folder / name).unlink(missing_ok=True)
    parts = folder / PARTS
    if parts.is_dir():
        for p in parts.glob("*"):
            p.unlink()
        parts.rmdir()


def read_run_table(run_dir: Path) -> pd.DataFrame:
    """The results table of a run folder: ``results.parquet`` plus any parts not yet compacted."""
    return ResultsTable(run_dir).frame
