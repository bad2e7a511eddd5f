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
(:func:`provenance`). Every frame written or read has the column types of
:func:`normalize_columns` (schema 3), so Parquet and CSV read back alike.
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

SCHEMA_VERSION = 3
"""Version of the table's layout (columns and their meaning); 2: part files + provenance metadata;
3: one type per column (numeric ``sigma`` + ``sigma_rule``, nullable integers, NA ``layer`` for
whole-curve rows, categoricals)."""

INTEGER_COLUMNS = ("step", "layer", "seed", "n_samples", "n_permutations")
FLOAT_COLUMNS = ("value", "alpha", "sigma", "base")
CATEGORY_COLUMNS = ("split", "metric", "final_norm", "kernel", "sigma_rule", "label_view", "null", "flag",
                    "estimator")
# The documented schema (README "Results schema", the docs site): one meaning per column.
COLUMN_MEANING = {
    "step": "Training step of the model state measured (a checkpoint's global step; 0 = before "
            "training). In the multi-token analysis: the decoding step t; -1 for rows of no "
            "decoding step (content-vs-stopword rows).",
    "split": "Evaluation split: `id` (in distribution), `ood` (out of distribution), `all` "
             "(early-exit accuracy over both); in the multi-token rows with step -1, the token "
             "group (content / stopword).",
    "metric": "What `value` is: `predictive_information`, `incremental_gain` (each with "
              "`_null`, `_null_std`, `_corrected`), `early_exit_accuracy`, "
              "`representation_entropy`, `label_entropy`, the analyses' `ridge_*`, "
              "`attention_*`, `residual_scale*`, `kernel_ablation_*`, and the Layer-by-Layer "
              "metrics of `inforidge layers`. With the stochastic estimator, `<metric>_se` "
              "rows hold the standard errors of its estimates.",
    "layer": "0 = embedding output, l = output of block l; NA for a number about no single "
             "layer (label entropy, ridge statistics).",
    "value": "The number (bits for information and entropies with base 2; a fraction for "
             "accuracies).",
    "seed": "Seed of the subsample of test prompts the row was measured on.",
    "n_samples": "Number of samples (prompts) in that subsample.",
    "alpha": "Rényi order α of the entropies (1 = von Neumann).",
    "kernel": "Kernel of the Gram matrices: gaussian, laplacian, polynomial or linear.",
    "sigma": "Gaussian bandwidth σ when `sigma_rule` is `fixed` (the paper's 1.0); NA for the "
             "median rule and for rows of no Gaussian kernel.",
    "sigma_rule": "`fixed` (σ in `sigma`), `median` (σ = the median pairwise distance of each "
                  "layer's states, per subsample) or NA (no Gaussian kernel).",
    "base": "Log base of the entropies (2 = bits).",
    "final_norm": "Final-norm view: `post` (last layer after the final norm, as Hugging Face "
                  "returns it) or `pre` (raw residual stream at every layer).",
    "label_view": "How the target is embedded: `embedding_output` (the paper's: embedding-layer "
                  "output at the target's position; carries the position for GPT-2) or "
                  "`token_embedding` (the token-embedding row alone).",
    "n_permutations": "Draws of the permutation null behind the `_null` and `_corrected` rows.",
    "null": "Which null: `permutation` (targets shuffled among all samples) or "
            "`permutation_within_length` (shuffled only among prompts of the same length, "
            "when the label embedding carries the prompt length).",
    "estimator": "Which estimator made an information row: `exact` (eigendecomposition of the "
                 "N × N Grams) or `stochastic` (matrix-free Lanczos quadrature + Hutch++, "
                 "`tracking.measure.estimator`); NA on rows that are no information "
                 "estimate (accuracies, dominant dimensions, attention, ...).",
    "flag": "NA, or a warning about the row: `constant_states` (a layer whose states are the "
            "same for every sample; its MI is 0 by construction), `degenerate_gram`, "
            "`massive_dimension`, `too_few_samples`, `flat_curve`, `too_few_draws`, ...",
}


def column_type(column: str) -> str:
    """The pandas type of a standard column in a table (Int64, float64 or category)."""
    if column in INTEGER_COLUMNS:
        return "Int64"
    if column in FLOAT_COLUMNS:
        return "float64"
    return "category" if column in CATEGORY_COLUMNS else "object"


def schema_markdown() -> str:
    """The schema as a markdown table (column, type, meaning), in column order; the README and
    the docs site show exactly this (a test compares them)."""
    missing = [c for c in COLUMNS if c not in COLUMN_MEANING]
    if missing:
        raise ValueError(f"no description for the columns {missing}: add them to COLUMN_MEANING")
    rows = ["| column | type | meaning |", "|---|---|---|"]
    rows += [f"| `{c}` | {column_type(c)} | {COLUMN_MEANING[c]} |" for c in COLUMNS]
    return "\n".join(rows) + "\n"


_LEGACY_WHOLE_CURVE = -1  # schema <= 2 wrote layer -1 for rows about no single layer


def _split_legacy_sigma(sigma: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A schema-2 ``sigma`` of strings ("1.0", "median", "None") -> (numeric sigma, sigma_rule)."""
    text = sigma.astype("string").str.strip()
    median = text == "median"
    number = pd.to_numeric(text.where(~median), errors="coerce")
    rule = pd.Series(pd.NA, index=sigma.index, dtype="object")
    rule[number.notna().to_numpy()] = "fixed"
    rule[median.fillna(False).to_numpy()] = "median"
    return number.astype("float64"), rule


def normalize_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the standard columns present (NA where missing), first and in order, and of
    one type each: :data:`INTEGER_COLUMNS` nullable Int64, :data:`FLOAT_COLUMNS` float64,
    :data:`CATEGORY_COLUMNS` categoricals (sorted categories). A schema-2 table's string ``sigma``
    becomes a number plus ``sigma_rule``, and its ``layer = -1`` sentinel NA. Extra columns are kept
    as they are. A value that does not fit its type (``layer`` 2.5, ``sigma`` "wide") raises."""
    f = frame.copy()
    for c in COLUMNS:
        if c not in f:
            f[c] = pd.NA
    if f["sigma"].dtype == object or pd.api.types.is_string_dtype(f["sigma"]):
        sigma, rule = _split_legacy_sigma(f["sigma"])
        bad = f["sigma"].notna() & sigma.isna() & rule.isna() & ~f["sigma"].astype("string").isin(["None", "nan", ""])
        if bad.any():
            raise ValueError(f"sigma must be a number, 'median' or empty; got {sorted(set(f['sigma'][bad].astype(str)))}")
        f["sigma"] = sigma
        f["sigma_rule"] = f["sigma_rule"].where(f["sigma_rule"].notna(), rule)
    for c in INTEGER_COLUMNS:
        f[c] = pd.to_numeric(f[c], errors="raise").astype("Int64")
    f.loc[f["layer"] == _LEGACY_WHOLE_CURVE, "layer"] = pd.NA
    for c in FLOAT_COLUMNS:
        f[c] = pd.to_numeric(f[c], errors="raise").astype("float64")
    for c in CATEGORY_COLUMNS:
        text = f[c].astype("string")  # every value as its text (a number in `split` stays, as "3")
        values = text.astype("object").where(text.notna(), None)
        # categories from Python strings: the same category dtype as a Parquet read-back
        f[c] = pd.Categorical(values, categories=sorted({v for v in values if v is not None}))
    return f[COLUMNS + [c for c in f.columns if c not in COLUMNS]].reset_index(drop=True)

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
            self._frames.append(normalize_columns(pd.read_parquet(self.parquet_path)))
            self._compacted_upto = int(read_table_metadata(self.parquet_path).get("parts_upto", 0))
        for index, path in self._parts():
            if index > self._compacted_upto:
                self._frames.append(normalize_columns(pd.read_parquet(path)))
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
            self._frames = [_concat_normalized(self._frames)]
        return self._frames[0]

    def steps(self) -> set[int]:
        """Steps that already have rows (used to skip finished work on resume)."""
        f = self.frame
        return set() if f.empty else {int(s) for s in f["step"].dropna().unique()}

    def append(self, rows: Iterable[dict]) -> None:
        """Add rows; with a folder, write them as one part file (and compact every COMPACT_EVERY parts)."""
        new = pd.DataFrame(list(rows))
        if new.empty:
            return
        new = normalize_columns(new)
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
        self._frames = [normalize_columns(frame[~gone])]
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


def sigma_label(frame: pd.DataFrame) -> pd.Series:
    """Per row, the bandwidth as one string for grouping and display: "median" for the median
    rule, the number (``str(float)``, e.g. "1.0") for a fixed bandwidth, "" for no bandwidth.
    Reads rows of any schema (a schema-2 string ``sigma`` too)."""
    index = frame.index
    raw = frame["sigma"] if "sigma" in frame else pd.Series(None, index=index, dtype="object")
    number = pd.to_numeric(raw, errors="coerce")
    labels = number.map(str).where(number.notna(), "").astype("object")
    median = raw.astype("string").eq("median").fillna(False)
    if "sigma_rule" in frame:
        median |= frame["sigma_rule"].astype("string").eq("median").fillna(False)
    labels[median.to_numpy()] = "median"
    return labels


def _concat_normalized(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Join frames that are each already :func:`normalize_columns`-typed: the categoricals get the
    union of the categories, the other columns keep their types. Re-normalising the joined table
    instead cost 0.65 s at 120 k rows, paid again on every read after an append."""
    union = {c: pd.CategoricalDtype(sorted(set().union(*(f[c].cat.categories for f in frames))))
             for c in CATEGORY_COLUMNS}
    return pd.concat([f.astype(union) for f in frames], ignore_index=True)


def read_csv_table(path: str | Path) -> pd.DataFrame:
    """A results.csv read back with the table's column types (equal to the Parquet frame)."""
    return normalize_columns(pd.read_csv(path, keep_default_na=True))


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
