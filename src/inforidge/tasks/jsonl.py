"""Your own task as a JSONL file: one JSON object a line.

Keys of a line:

- ``prompt`` (string, required): the text whose last position every measurement reads.
- ``target`` (string, required): the true next token, tokenised on its own without
  special tokens (for BPE tokenizers include the leading space: ``" Paris"``).
- ``split`` (optional, ``"id"`` or ``"ood"``, default ``"id"``): in or out of distribution.
- ``set`` (optional, ``"train"``, ``"validation"`` or ``"test"``): where an in-distribution
  line goes. Either every ``id`` line has one or none has; ``ood`` lines are test data only.
- any other key is kept as metadata of the record.

Splits: ``ood`` lines form ``test_ood``. Without ``set`` fields the ``id`` lines are shuffled
with ``seed`` and cut into ``test_id`` (``test_fraction``), ``validation``
(``validation_fraction``; each at least one line) and ``train`` (the rest); each split keeps
file order. The task's vocabulary is every whitespace-separated word of the prompts and
targets, so the default from-scratch GPT-2 with a word-level tokenizer works on any file.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from inforidge.tasks.base import TaskData, make_record

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("prompt", "target")


SETS = ("train", "validation", "test")


SPLIT_OF_SET = {"train": "train", "validation": "validation", "test": "test_id"}


def iter_json_objects(path: str | Path, what: str = "JSONL file") -> Iterator[tuple[str, int, dict]]:
    """(where, line number, object) for every non-blank line of a JSONL file; ``where`` is
    ``path:line`` for error messages. Raises naming the line for bad JSON or a non-object."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist")
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); each line must be one JSON object") from e
            if not isinstance(obj, dict):
                raise ValueError(f"{where}: each line must be a JSON object; got {type(obj).__name__}")
            yield where, lineno, obj


def read_jsonl_records(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, record) for every non-blank line, checked; raises ValueError naming the line."""
    out = []
    for where, lineno, obj in iter_json_objects(path, "task file"):
        missing = [k for k in REQUIRED_KEYS if k not in obj]
        if missing:
            raise ValueError(f"{where}: missing key(s) {', '.join(missing)} (every line needs prompt and target)")
        for k in REQUIRED_KEYS:
            if not isinstance(obj[k], str) or not obj[k].strip():
                raise ValueError(f"{where}: {k} must be a non-empty string; got {obj[k]!r}")
        split = obj.pop("split", "id")
        if split not in ("id", "ood"):
            raise ValueError(f"{where}: split must be 'id' or 'ood'; got {split!r}")
        if "set" in obj and obj["set"] not in SETS:
            raise ValueError(f"{where}: set must be one of {SETS}; got {obj['set']!r}")
        if split == "ood" and obj.get("set", "test") != "test":
            raise ValueError(f"{where}: an ood line is test data; drop its set or make it 'test'")
        prompt, target = obj.pop("prompt"), obj.pop("target")
        out.append((lineno, make_record(prompt, target, split, **obj)))
    if not out:
        raise ValueError(f"task file {path} has no samples (it is empty or blank)")
    return out


def _seeded_sets(n: int, seed: int, validation_fraction: float, test_fraction: float) -> list[str]:
    """The set name of each of n id lines: a seeded shuffle cut into test, validation, train."""
    for name, frac in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 < frac < 1:
            raise ValueError(f"task.{name} must be in (0, 1); got {frac}")
    n_test = max(1, round(test_fraction * n))
    n_val = max(1, round(validation_fraction * n))
    if n - n_test - n_val < 1:
        raise ValueError(
            f"{n} in-distribution lines cannot be cut into train, validation ({n_val}) and test ({n_test}); "
            "add lines, lower the fractions, or give each line a set"
        )
    order = np.random.default_rng(seed).permutation(n)
    sets = ["train"] * n
    for i in order[:n_test]:
        sets[i] = "test"
    for i in order[n_test : n_test + n_val]:
        sets[i] = "validation"
    return sets


def _warn_duplicates(path: Path, lines: list[tuple[int, dict]]) -> None:
    """Lines repeating an earlier line's prompt and target: kept (they may be intended), with a
    warning, since a repeat that lands in train and in a test split inflates the test numbers."""
    first: dict[tuple[str, str], int] = {}
    repeats = []
    for n, r in lines:
        key = (r["prompt"], r["target"])
        if key in first:
            repeats.append((n, first[key]))
        else:
            first[key] = n
    if repeats:
        log.warning("%s: %d line(s) repeat the prompt and target of an earlier line (e.g. line %d repeats "
                    "line %d); they are kept, but a repeat in train and in a test split inflates the test "
                    "numbers: remove the repeats unless they are intended", path, len(repeats), *repeats[0])


def load_jsonl_task(
    path: str | Path, *, seed: int = 0, validation_fraction: float = 0.1, test_fraction: float = 0.2
) -> TaskData:
    """Train / validation / test_id / test_ood records from a JSONL file (format: module doc)."""
    path = Path(path)
    lines = read_jsonl_records(path)
    _warn_duplicates(path, lines)
    id_lines = [(n, r) for n, r in lines if r["split"] == "id"]
    ood = [r for _, r in lines if r["split"] == "ood"]
    if not ood:
        raise ValueError(
            f"{path} has no out-of-distribution lines; InfoRidge compares in- and out-of-distribution "
            'test data, so mark some lines "split": "ood"'
        )
    if not id_lines:
        raise ValueError(f'{path} has no in-distribution lines ("split": "id" or no split) to train on')
    with_set = [n for n, r in id_lines if "set" in r]
    if with_set and len(with_set) != len(id_lines):
        lacking = next(n for n, r in id_lines if "set" not in r)
        raise ValueError(
            f"{path}:{lacking}: this id line has no set but line {with_set[0]} has one; "
            "give every id line a set, or none (then they are split with task.seed)"
        )
    if with_set:
        sets = [r["set"] for _, r in id_lines]
    else:
        sets = _seeded_sets(len(id_lines), seed, validation_fraction, test_fraction)
    splits: dict[str, list[dict]] = {"train": [], "validation": [], "test_id": [], "test_ood": ood}
    for (_, r), s in zip(id_lines, sets, strict=True):
        splits[SPLIT_OF_SET[s]].append(r)
    for s, name in SPLIT_OF_SET.items():
        if not splits[name]:
            raise ValueError(f"{path}: no id line has set {s!r}; every split needs at least one line")
    words = {w for _, r in lines for w in (r["prompt"] + " " + r["target"]).split()}
    return TaskData(
        name=f"jsonl:{path.stem}",
        splits=splits,
        vocabulary=sorted(words),
        metadata={
            "path": str(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "split_from": "set field" if with_set else f"seeded draw (seed {seed})",
        },
    )
