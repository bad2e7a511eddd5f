"""Text sources of the Layer-by-Layer suite (built-in corpus, .txt, .jsonl, hub) and
labelled texts for the downstream probe. Knows no model.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inforidge.tasks.jsonl import iter_json_objects


def _records(path: Path) -> list[tuple[str, dict]]:
    """(where, record) pairs from a .jsonl/.ndjson or .csv/.tsv file."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):

        return [(where, rec) for where, _, rec in iter_json_objects(path, "labelled-text file")]
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",")
            # Line 1 is the header, so record k sits on line k + 1 (no multi-line fields).
            return [(f"{path}:{i}", dict(rec)) for i, rec in enumerate(reader, start=2)]
    raise ValueError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .jsonl, .ndjson, .csv or .tsv")


def _label_kind(v) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, str):
        return "str"
    return None


def load_labelled_texts(path, text_field: str = "text", label_field: str = "label") -> tuple[list[str], np.ndarray]:
    """Read (text, label) pairs from a local JSONL or CSV file.

    Args:
        path: a .jsonl / .ndjson file (one JSON object per line; blank lines ignored) or a
            .csv / .tsv file with a header row.
        text_field, label_field: the field / column names.

    Returns:
        (texts, labels): N non-empty strings and an (N,) array of labels. JSONL labels must be
        all integers, all booleans or all strings; CSV labels are strings, turned into int64
        when every one is an integer literal.

    Raises:
        FileNotFoundError for a missing file; ValueError (naming the file and line) for an
        unsupported type, a bad JSON line, a missing field, an empty text, a missing or
        non-scalar label, mixed label types, or a file with no records.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no labelled-text file at {p}")
    records = _records(p)
    if not records:
        raise ValueError(f"{p} holds no records")
    texts, labels, kinds = [], [], set()
    for where, rec in records:
        for field, role in ((text_field, "text_field"), (label_field, "label_field")):
            if field not in rec:
                raise ValueError(
                    f"{where}: no field {field!r} (fields: {', '.join(map(str, rec))}); pass {role}=..."
                )
        text, label = rec[text_field], rec[label_field]
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: {text_field!r} must be a non-empty string; got {text!r}")
        kind = _label_kind(label)
        if kind is None or (kind == "str" and not label.strip()):
            raise ValueError(
                f"{where}: {label_field!r} must be an integer, boolean or non-empty string; got {label!r}"
            )
        texts.append(text)
        labels.append(label)
        kinds.add(kind)
    if len(kinds) > 1:
        raise ValueError(f"{p}: labels mix types ({', '.join(sorted(kinds))}); use one type for all")
    if p.suffix.lower() in (".csv", ".tsv"):
        try:
            return texts, np.asarray([int(v) for v in labels], dtype=np.int64)
        except ValueError:
            pass
    return texts, np.asarray(labels)


BUILTIN = "builtin"


@dataclass
class TextSource:
    """Prompts and the source's name (the ``split`` column)."""

    name: str
    texts: list[str]


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def builtin_corpus() -> list[str]:
    """Offline English prose: the paragraphs of Python's bundled ``pydoc_data.topics``.

    Every CPython install has it (PSF licence, no download). Indented blocks (code examples)
    and lists are dropped; paragraphs of at least 12 words are kept, in sorted topic order,
    whitespace collapsed: about 730 paragraphs of 15-75 words.
    """
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for para in re.split(r"\n\s*\n", topics[key]):
            lines = para.split("\n")
            if any(line.startswith((" ", "\t")) for line in lines):
                continue
            text = _clean(para)
            if len(text.split()) >= 12 and not text.startswith(("*", "-", "=", "+")):
                out.append(text)
    return out


def _iter_text_file(path: Path, unit: str) -> Iterator[str]:
    if unit == "line":
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield _clean(line)
    elif unit == "paragraph":
        block: list[str] = []
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    block.append(line)
                elif block:
                    yield _clean(" ".join(block))
                    block = []
        if block:
            yield _clean(" ".join(block))
    else:
        raise ValueError(f"unit must be 'line' or 'paragraph'; got {unit!r}")


def _iter_jsonl(path: Path, text_field: str) -> Iterator[str]:

    for where, _, rec in iter_json_objects(path, "text file"):
        if text_field not in rec:
            raise ValueError(
                f"{where} has no field {text_field!r} (it has: {', '.join(map(str, rec))}); "
                f"pass text_field= (--text-field) naming the field that holds the text"
            )
        value = rec[text_field]
        if not isinstance(value, str):
            raise ValueError(f"{where}: field {text_field!r} is {type(value).__name__}, not a string")
        if value.strip():
            yield _clean(value)


def _iter_hf(spec: str, split: str, text_field: str) -> Iterator[str]:
    from inforidge._optional import require

    datasets = require("datasets", "hf: sources")
    name, _, config = spec.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split=split, streaming=True)
    except Exception as e:
        raise ValueError(
            f"could not load the dataset {name!r} (config {config or None!r}, split {split!r}): {e}. "
            "hf: sources need the Hugging Face hub (online) or a filled cache; offline, use a local "
            "text/JSONL file or the built-in corpus (source 'builtin')"
        ) from e
    for rec in ds:
        if text_field not in rec:
            raise ValueError(f"dataset {name!r} has no field {text_field!r} (it has: {', '.join(rec)}); pass text_field=")
        value = rec[text_field]
        if isinstance(value, str) and value.strip():
            yield _clean(value)


def load_texts(
    source: str | Path = BUILTIN,
    *,
    text_field: str = "text",
    unit: str = "line",
    max_prompts: int | None = None,
    hf_split: str = "test",
) -> TextSource:
    """Read prompts from a text source, stopping after ``max_prompts`` (None: all).

    ``source``:
      - ``"builtin"``: :func:`builtin_corpus` (offline);
      - a ``.jsonl`` file: one JSON object per line, the prompt in ``text_field``;
      - any other file: one prompt per non-empty line (``unit="line"``) or per
        blank-line-separated paragraph (``unit="paragraph"``);
      - ``"hf:NAME[:CONFIG]"``: a ``datasets`` dataset (streamed; needs the hub), split
        ``hf_split``, field ``text_field`` (e.g. ``hf:Salesforce/wikitext:wikitext-103-raw-v1``).
    Whitespace runs are collapsed to one space; empty prompts are dropped.
    """
    spec = str(source)
    if spec in (BUILTIN, f"{BUILTIN}:pydoc"):
        name, it = "builtin:pydoc", iter(builtin_corpus())
    elif spec.startswith("hf:"):
        name, it = f"{spec}/{hf_split}", _iter_hf(spec[3:], hf_split, text_field)
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(
                f"text source {spec!r} is not a file; give a .txt/.jsonl file, 'builtin' (the offline "
                "corpus) or 'hf:NAME[:CONFIG]'"
            )
        name = path.stem
        it = _iter_jsonl(path, text_field) if path.suffix.lower() == ".jsonl" else _iter_text_file(path, unit)
    texts = list(itertools.islice(it, max_prompts))
    if not texts:
        raise ValueError(
            f"the text source {spec!r} holds no non-empty prompts; give a file with at least two "
            "non-empty lines (or JSONL records) of text"
        )
    return TextSource(name, texts)
