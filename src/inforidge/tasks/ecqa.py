"""ECQA (Aggarwal et al., 2021; CommonsenseQA questions with explanations) as a next-letter task.

Schema: ``tasksource/ecqa`` (DATA.md §5.1): ``q_no, q_concept, q_text, q_op1 .. q_op5, q_ans,
taskA_pos, taskA_neg, taskB``, all strings, read from local CSV (the authors'
``cqa_data_<set>.csv`` with its leading index column too), JSONL or parquet: ``task.path`` is
one file or a folder whose files end in their set, e.g. ``train.parquet``, ``validation.jsonl``,
``cqa_data_test.csv``. ``datasets.load_dataset`` is used only when ``task.hub_dataset`` names
the dataset (``tasksource/ecqa``).

Prompt (paper App. C.1)::

    Question: What do people usually do at a birthday party?
    Options:
    A. Sleep
    B. Celebrate
    C. Cook
    D. Exercise
    E. Drive
    Answer:

-> target ``" B"``: the letter of ``q_ans`` (the answer *text*) among ``q_op1..q_op5``, matched
exactly, else ignoring case and surrounding spaces; a row whose answer is not among its options,
or matches more than one, is an error naming the row.

In and out of distribution (ECQA has no natural shift; this is our choice): a test question is
in distribution when its ``q_concept`` (the ConceptNet concept the question was written about)
also occurs among the training questions, out of distribution when the concept is unseen. A
``split`` column (``id`` / ``ood``) overrides this row by row. A folder needs train and test
files; without a validation file the train rows are cut (``task.validation_fraction``, seeded by
``task.seed``). One file without a set in its name: a seeded ``task.test_fraction`` of its
concepts is held out as the out-of-distribution test split, and the other rows are cut into
train / validation / test_id by ``task.validation_fraction`` and ``task.test_fraction``.
Records keep ``q_no``, ``q_concept``, ``answer_text`` and ``signal_spans``: the character span
``[start, end)`` of the correct option's text in the prompt (METHOD §4's signal tokens for ECQA).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from inforidge.tasks.base import TaskData, make_record
from inforidge.tasks.clutrr import file_digest, hub_sets, read_sets, seeded_cut, words_of

LETTERS = "ABCDE"


OPTION_COLUMNS = tuple(f"q_op{i}" for i in range(1, 6))


REQUIRED_COLUMNS = ("q_text", *OPTION_COLUMNS, "q_ans")


def ecqa_prompt(question: str, options: list[str]) -> str:
    """The paper's prompt: the question, the five options lettered A-E, then ``Answer:``."""
    lines = [f"Question: {question.strip()}", "Options:"]
    lines += [f"{letter}. {str(option).strip()}" for letter, option in zip(LETTERS, options, strict=True)]
    return "\n".join(lines + ["Answer:"])


def answer_letter(options: list[str], answer: str, where: str = "row") -> str:
    """The letter of ``answer`` among the five ``options`` (exact, else case/space-insensitive)."""
    hits = [i for i, o in enumerate(options) if o == answer]
    if not hits:
        hits = [i for i, o in enumerate(options) if str(o).strip().lower() == str(answer).strip().lower()]
    if not hits:
        raise ValueError(f"{where}: q_ans {answer!r} is not among the options {list(options)}")
    if len(hits) > 1:
        raise ValueError(f"{where}: q_ans {answer!r} matches options {[LETTERS[i] for i in hits]} (duplicate option texts)")
    return LETTERS[hits[0]]


def ecqa_record(row: dict, split: str) -> dict:
    """One ``tasksource/ecqa`` row as a prompt/target record."""
    where = row.get("_where", "row")
    options = [str(row[c]) for c in OPTION_COLUMNS]
    letter = answer_letter(options, str(row["q_ans"]), where)
    prompt = ecqa_prompt(str(row["q_text"]), options)
    text = options[LETTERS.index(letter)].strip()
    start = prompt.rindex("\nOptions:\n")
    start = prompt.index(f"\n{letter}. {text}\n", start) + len(f"\n{letter}. ")
    return make_record(
        prompt, " " + letter, split, q_no=str(row.get("q_no", "")), q_concept=str(row.get("q_concept", "")),
        answer_text=str(row["q_ans"]), signal_spans=[[start, start + len(text)]],
    )


def _check_columns(df: pd.DataFrame, where: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: not the ECQA schema; missing column(s) {', '.join(missing)} "
                         f"(expected {', '.join(REQUIRED_COLUMNS)}, as in tasksource/ecqa)")


def _flag(row: dict) -> str | None:
    value = row.get("split")
    value = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).strip().lower()
    if value and value not in ("id", "ood"):
        raise ValueError(f"{row.get('_where', 'row')}: split must be 'id' or 'ood'; got {value!r}")
    return value or None


def ecqa_task_from_sets(
    sets: dict[str, pd.DataFrame], *, seed: int = 0, validation_fraction: float = 0.1, test_fraction: float = 0.2,
    name: str = "ecqa", metadata: dict | None = None,
) -> TaskData:
    """train / validation / test_id / test_ood records from frames by set (module doc)."""
    where = (metadata or {}).get("source", "the ECQA data")
    for s, df in sets.items():
        _check_columns(df, f"{where} ({s})")
    rows = {s: df.to_dict("records") for s, df in sets.items()}
    if "all" in rows:
        if len(rows) > 1:
            raise ValueError(f"{where}: mix of files with and without a set in their name; name all of them "
                             "<...>train / validation / test, or give one file")
        every = rows["all"]
        flags = [_flag(r) for r in every]
        if any(flags):
            ood = [r for r, f in zip(every, flags, strict=True) if f == "ood"]
            rest = [r for r, f in zip(every, flags, strict=True) if f != "ood"]
            split_from = "split column"
        else:
            concepts = sorted({str(r.get("q_concept", "")) for r in every})
            if len(concepts) < 2:
                raise ValueError(f"{where}: one file needs q_concept values (>= 2 distinct) or a split column "
                                 "to hold out out-of-distribution questions")
            n_out = min(len(concepts) - 1, max(1, round(test_fraction * len(concepts))))
            held = set(np.random.default_rng(seed).permutation(concepts)[:n_out].tolist())
            ood = [r for r in every if str(r.get("q_concept", "")) in held]
            rest = [r for r in every if str(r.get("q_concept", "")) not in held]
            split_from = f"held-out concepts (seed {seed})"
        is_test = seeded_cut(len(rest), test_fraction, seed + 1, "task.test_fraction")
        fit = [r for r, m in zip(rest, is_test, strict=True) if not m]
        is_val = seeded_cut(len(fit), validation_fraction, seed)
        splits = {
            "train": [r for r, m in zip(fit, is_val, strict=True) if not m],
            "validation": [r for r, m in zip(fit, is_val, strict=True) if m],
            "test_id": [r for r, m in zip(rest, is_test, strict=True) if m],
            "test_ood": ood,
        }
    else:
        for need in ("train", "test"):
            if need not in rows:
                raise ValueError(f"{where}: no {need} file (name files <...>train, <...>validation, <...>test)")
        train, validation = rows["train"], rows.get("validation")
        split_from = "files"
        if validation is None:
            is_val = seeded_cut(len(train), validation_fraction, seed)
            validation = [r for r, m in zip(train, is_val, strict=True) if m]
            train = [r for r, m in zip(train, is_val, strict=True) if not m]
            split_from = f"train rows cut into train/validation (seed {seed})"
        seen = {str(r.get("q_concept", "")) for r in rows["train"]}
        test_id, test_ood = [], []
        for r in rows["test"]:
            flag = _flag(r) or ("id" if str(r.get("q_concept", "")) in seen else "ood")
            (test_ood if flag == "ood" else test_id).append(r)
        splits = {"train": train, "validation": validation, "test_id": test_id, "test_ood": test_ood}
    for s in ("test_id", "test_ood"):
        if not splits[s]:
            raise ValueError(
                f"{where}: split {s} is empty ({split_from}); out of distribution = test questions whose q_concept "
                "is unseen in training. Give the rows a split column ('id' / 'ood') to choose"
            )
    records = {s: [ecqa_record(r, "ood" if s == "test_ood" else "id") for r in rs] for s, rs in splits.items()}
    return TaskData(
        name=name, splits=records, vocabulary=words_of(r for rs in records.values() for r in rs),
        metadata={**(metadata or {}), "split_from": split_from},
    )


def load_ecqa_task(path: str | Path, *, seed: int = 0, validation_fraction: float = 0.1,
                   test_fraction: float = 0.2) -> TaskData:
    """The ECQA task from local files (a file or a folder; module doc)."""
    path = Path(path)
    return ecqa_task_from_sets(
        read_sets(path), seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction,
        name=f"ecqa:{path.stem if path.is_file() else path.name}",
        metadata={"source": str(path), "sha256": file_digest(path)},
    )


def build_ecqa_task(t) -> TaskData:
    """The ECQA task from a ``TaskConfig``: task.hub_dataset when named, else task.path."""
    common = {"seed": t.seed, "validation_fraction": t.validation_fraction, "test_fraction": t.test_fraction}
    if t.hub_dataset:
        return ecqa_task_from_sets(hub_sets(t.hub_dataset, t.hub_config), **common, name=f"ecqa:{t.hub_dataset}",
                                   metadata={"source": f"hub {t.hub_dataset}"})
    if not t.path:
        raise ValueError("task.name=ecqa needs task.path (a file or folder in the tasksource/ecqa schema) "
                         "or task.hub_dataset=tasksource/ecqa")
    return load_ecqa_task(t.path, **common)
