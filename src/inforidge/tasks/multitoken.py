"""Tasks with multi-token targets for the generation analysis (METHOD §5-6; paper §6).

A record is ``{"prompt": str, "target": str, "id": str, "split": str, ...}``; the target is a
whole gold sequence (it is tokenised by the model's tokenizer, without special tokens).

- **CNN/DailyMail** (:func:`load_cnn_dailymail`): the official schema, fields ``article``,
  ``highlights``, ``id`` (DATA.md §6), from a local ``.jsonl``/``.json``/``.parquet``/``.csv``
  file or a folder holding ``test.*`` (or ``<split>.*``, or ``<split>/*.parquet``), or raw
  ``.story`` files (lines after ``@highlight`` are highlights); with no path, from
  ``datasets.load_dataset("abisee/cnn_dailymail", config)`` when online. Prompt (paper
  App. C.1): ``article + "\\n\\n The following is a one-paragraph highlight summary of the
  article:\\n\\n"``; target: the highlights. Version ``1.0.0`` (the paper's) joins the
  highlights with a space, ``2.0.0``/``3.0.0`` with a newline: the loader re-joins the lines of a
  file with the separator of ``config`` (so a 3.0.0 file gives the 1.0.0 target with
  ``config="1.0.0"``).
- **JSONL** (:func:`load_sequence_jsonl`): one object a line with ``prompt`` and ``target``
  strings (``target`` may also be a list of strings, joined with a space); other keys are kept.
- **Continuation of real text** (:func:`text_continuation`): a paragraph of real prose (the
  offline built-in corpus, Python's bundled documentation, or your own text file), cut after
  its first ``prompt_words`` words; the prompt is that beginning, the gold target the rest of
  the paragraph (the pipeline cuts it to ``max_target_tokens`` tokens of the model's tokenizer,
  by default as many as it generates). Offline, and a task any pretrained LM can do.
- **Synthetic continued arithmetic** (:func:`continued_arithmetic`): the prompt of the
  synthetic task (first 9 elements and the query word ``?``) and, as target, the next ``k``
  signal values ``S{s_9} S{s_10} ... S{s_(9+k-1)}`` of the same progression (the first one is
  the single-token task's answer). Offline, in the default model's vocabulary.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np

from inforidge.config.settings import MULTITOKEN_TASKS
from inforidge.tasks.jsonl import iter_json_objects
from inforidge.tasks.synthetic import N_ELEMENTS, ArithmeticSpec, generate_arithmetic

log = logging.getLogger(__name__)

CNN_DM_SUFFIX = "\n\n The following is a one-paragraph highlight summary of the article:\n\n"


CNN_DM_HUB = "abisee/cnn_dailymail"


CNN_DM_CONFIGS = {"1.0.0": " ", "2.0.0": "\n", "3.0.0": "\n"}  # highlight separator per version


CNN_DM_FIELDS = ("article", "highlights", "id")


_TABLE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def cnn_dailymail_prompt(article: str) -> str:
    """The paper's CNN/DailyMail prompt (App. C.1)."""
    return article + CNN_DM_SUFFIX


def join_highlights(highlights: str, config: str = "1.0.0") -> str:
    """The highlights' lines joined with the separator of ``config`` (1.0.0: a space)."""
    if config not in CNN_DM_CONFIGS:
        raise ValueError(f"config must be one of {list(CNN_DM_CONFIGS)}; got {config!r}")
    lines = [h.strip() for h in str(highlights).split("\n") if h.strip()]
    return CNN_DM_CONFIGS[config].join(lines)


def parse_story(text: str) -> tuple[str, list[str]]:
    """(article, highlight lines) of a raw ``.story`` file, as the HF builder reads it:
    lines without an end mark get " ." appended; lines after ``@highlight`` are highlights."""
    end_marks = (".", "!", "?", "...", "'", "`", '"', "\u2019", "\u201d", ")")
    article, highlights, next_is_highlight = [], [], False
    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("@highlight"):
            next_is_highlight = True
            continue
        if not line.endswith(end_marks):
            line += " ."
        (highlights if next_is_highlight else article).append(line)
    return " ".join(article), highlights


def _read_frame(path: Path):
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if suffix in (".jsonl", ".json"):
        return pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(_TABLE_SUFFIXES)}")


def _cnn_rows_from_path(path: Path, split: str) -> list[dict]:
    """Rows (article, highlights as lines joined by newline, id) from a file or folder."""
    if path.is_file():
        files = [path]
    elif path.is_dir():
        stories = sorted(path.glob("*.story"))
        if stories:
            rows = []
            for f in stories:
                article, hl = parse_story(f.read_text(encoding="utf-8"))
                rows.append({"article": article, "highlights": "\n".join(hl), "id": f.stem, "_where": str(f)})
            return rows
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _TABLE_SUFFIXES
                       and re.split(r"[-_.]", p.stem.lower())[0] == split)
        sub = path / split
        if not files and sub.is_dir():
            files = sorted(p for p in sub.iterdir() if p.suffix.lower() in _TABLE_SUFFIXES)
        if not files:
            raise FileNotFoundError(
                f"no CNN/DailyMail {split} file in {path}: expected {split}.jsonl / {split}.parquet / "
                f"{split}.csv, a {split}/ folder of parquet shards, or .story files"
            )
    else:
        raise FileNotFoundError(f"CNN/DailyMail path {path} does not exist")
    rows = []
    for f in files:
        df = _read_frame(f)
        missing = [c for c in ("article", "highlights") if c not in df.columns]
        if missing:
            raise ValueError(
                f"{f}: missing column(s) {missing}; the CNN/DailyMail schema is {list(CNN_DM_FIELDS)} (DATA.md §6)"
            )
        for i, r in enumerate(df.to_dict("records")):
            rows.append({"article": r["article"], "highlights": r["highlights"],
                         "id": str(r.get("id", f"{f.stem}-{i}")), "_where": f"{f} row {i}"})
    return rows


def _offline() -> bool:
    return any(os.environ.get(v, "0") not in ("", "0", "false", "False")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"))


def load_cnn_dailymail(path: str | Path | None = None, *, config: str = "1.0.0", split: str = "test",
                       n: int | None = None, seed: int = 0) -> list[dict]:
    """CNN/DailyMail records with the paper's prompt; ``n`` draws a seeded subsample (file order kept).

    ``path``: a file or folder in the official schema (module doc); None loads
    ``abisee/cnn_dailymail`` with ``datasets`` (fails offline with the files to provide).
    """
    if config not in CNN_DM_CONFIGS:
        raise ValueError(f"config must be one of {list(CNN_DM_CONFIGS)}; got {config!r}")
    if path is not None:
        rows = _cnn_rows_from_path(Path(path), split)
    else:
        if _offline():
            raise FileNotFoundError(
                "CNN/DailyMail: no --data path was given and the Hugging Face hub is offline; pass a local "
                f"{split}.jsonl / {split}.parquet with the fields article, highlights, id (DATA.md §6)"
            )
        from inforidge._optional import require

        datasets = require("datasets", "CNN/DailyMail from the hub")
        ds = datasets.load_dataset(CNN_DM_HUB, config, split=split)
        rows = [{"article": r["article"], "highlights": r["highlights"], "id": r["id"],
                 "_where": f"{CNN_DM_HUB}:{split} row {i}"} for i, r in enumerate(ds)]
    records = []
    for r in rows:
        article, target = str(r["article"] or "").strip(), join_highlights(r["highlights"] or "", config)
        if not article or not target:
            log.warning("%s: empty article or highlights; skipped", r["_where"])
            continue
        records.append({"prompt": cnn_dailymail_prompt(article), "target": target, "id": r["id"], "split": split})
    if not records:
        raise ValueError(f"CNN/DailyMail ({path or CNN_DM_HUB}): no usable rows (every article or highlight is empty)")
    return subsample(records, n, seed)


def load_sequence_jsonl(path: str | Path, *, n: int | None = None, seed: int = 0) -> list[dict]:
    """Records from a JSONL file of ``{"prompt": ..., "target": ...}`` lines (module doc)."""
    records = []
    for where, lineno, obj in iter_json_objects(path):
        if "prompt" not in obj or "target" not in obj:
            raise ValueError(f"{where}: every line needs a JSON object with prompt and target")
        target = obj["target"]
        if isinstance(target, list) and all(isinstance(t, str) for t in target):
            target = " ".join(t.strip() for t in target)
        if not isinstance(obj["prompt"], str) or not obj["prompt"].strip():
            raise ValueError(f"{where}: prompt must be a non-empty string")
        if not isinstance(target, str) or not target.strip():
            raise ValueError(f"{where}: target must be a non-empty string (or a list of strings)")
        records.append({**obj, "prompt": obj["prompt"], "target": target,
                        "id": str(obj.get("id", lineno)), "split": str(obj.get("split", "test"))})
    if not records:
        raise ValueError(f"JSONL file {path} has no samples (it is empty or blank)")
    return subsample(records, n, seed)


def continued_arithmetic(n: int, *, k: int = 10, split: str = "id", seed: int = 0,
                         spec: ArithmeticSpec | None = None) -> list[dict]:
    """n synthetic records whose target is the next ``k`` signal values (module doc).

    ``split="id"`` draws the modulus ``spec.train_modulus`` (13), ``"ood"`` from ``spec.ood_moduli``.
    """
    if n < 1 or k < 1:
        raise ValueError(f"n and k must be >= 1; got n={n}, k={k}")
    if split not in ("id", "ood"):
        raise ValueError(f"split must be 'id' or 'ood'; got {split!r}")
    spec = spec or ArithmeticSpec()
    moduli = [spec.train_modulus] if split == "id" else list(spec.ood_moduli)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0 if split == "id" else 1]))
    records = []
    for i, r in enumerate(generate_arithmetic(n, moduli, rng, split)):
        p, s0, d = r["modulus"], r["s0"], r["d"]
        signals = [(s0 + j * d) % p for j in range(N_ELEMENTS - 1, N_ELEMENTS - 1 + k)]
        records.append({"prompt": r["prompt"], "target": " ".join(f"S{s}" for s in signals), "id": f"{split}-{i}",
                        "split": split, "modulus": p, "s0": s0, "d": d})
    return records


def text_continuation(path: str | Path | None = None, *, n: int | None = 100, seed: int = 0,
                      prompt_words: int = 24, min_target_words: int = 12) -> list[dict]:
    """Records ``{prompt, target, id, split="text"}`` from the paragraphs of a text source
    (``path``: a text file or folder of paragraphs, see :func:`~inforidge.tasks.corpora.load_texts`;
    None: the built-in corpus). Paragraphs with fewer than ``prompt_words + min_target_words``
    words are skipped; a seeded subsample of ``n`` is kept."""
    from inforidge.tasks.corpora import BUILTIN, load_texts

    if prompt_words < 1 or min_target_words < 1:
        raise ValueError("prompt_words and min_target_words must be >= 1")
    source = load_texts(BUILTIN if path is None else path, unit="paragraph")
    records = []
    for i, text in enumerate(source.texts):
        words = text.split()
        if len(words) < prompt_words + min_target_words:
            continue
        records.append({"prompt": " ".join(words[:prompt_words]), "target": " " + " ".join(words[prompt_words:]),
                        "id": f"{source.name}:{i}", "split": "text"})
    if len(records) < 2:
        raise ValueError(f"{source.name}: {len(records)} paragraph(s) of at least {prompt_words + min_target_words} "
                         "words; give a text with longer paragraphs (blank lines between them)")
    return subsample(records, n, seed)


def subsample(records: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded subsample of ``n`` records in their original order (all when n is None or larger)."""
    if n is None or n >= len(records):
        return records
    if n < 1:
        raise ValueError(f"n must be >= 1; got {n}")
    keep = np.sort(np.random.default_rng(seed).choice(len(records), n, replace=False))
    return [records[i] for i in keep]


def _synthetic(*, n, seed, k, split, **_) -> list[dict]:
    return continued_arithmetic(n or 100, k=k, split=split or "id", seed=seed)


def _cnn_dailymail(*, path, n, seed, split, config, **_) -> list[dict]:
    return load_cnn_dailymail(path, config=config, split=split or "test", n=n, seed=seed)


def _jsonl(*, path, n, seed, **_) -> list[dict]:
    if path is None:
        raise ValueError("task jsonl needs a data path: a JSONL file of prompt/target lines")
    return load_sequence_jsonl(path, n=n, seed=seed)


def _continuation(*, path, n, seed, **_) -> list[dict]:
    return text_continuation(path, n=n, seed=seed)


TASKS = {"synthetic": _synthetic, "continuation": _continuation, "cnn_dailymail": _cnn_dailymail, "jsonl": _jsonl}
assert tuple(TASKS) == MULTITOKEN_TASKS  # one list of names, also read by the CLI
"""Multi-token task name -> loader of its records (keyword arguments of :func:`load_multitoken_task`)."""


def load_multitoken_task(task: str, *, path: str | Path | None = None, n: int | None = None, seed: int = 0,
                         k: int = 10, split: str | None = None, config: str = "1.0.0") -> list[dict]:
    """Records of ``task`` (one of :data:`TASKS`: synthetic | cnn_dailymail | jsonl); see the loaders above."""
    if task not in TASKS:
        raise ValueError(f"unknown multi-token task {task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[task](path=path, n=n, seed=seed, k=k, split=split, config=config)
