"""The Layer-by-Layer representation suite (Skean et al. 2025; METHOD §7), end to end.

For a model (a causal LM or an encoder such as BERT) and a text source, every metric of
:mod:`inforidge.info.layer_metrics` is computed for every layer 0..L (0 = embedding
output, l = output of block l) and written as tidy rows of a
:class:`~inforidge.results.ResultsTable`:

=============================  ==========================================================
metric                         what (per layer)
=============================  ==========================================================
prompt_entropy                 mean over prompts of S_alpha of the prompt's token Gram
prompt_entropy_normalized      the same divided by log_base(T), T the prompt's tokens
effective_rank                 mean over prompts of erank of the prompt's (T, D) states
curvature                      mean over prompts of the token trajectory's curvature (rad)
dataset_entropy                S_alpha over the mean-pooled prompt vectors
dataset_effective_rank         erank of the (N, D) mean-pooled prompt vectors
infonce                        InfoNCE loss between two augmented copies (nats, lower = more invariant)
lidar                          LiDAR entropy, each prompt its own class (2 augmented copies)
dime                           DiME between the two augmented copies
=============================  ==========================================================

Conventions (each also recorded in the rows or stated in the report):

- Padding is masked out exactly: per-prompt metrics take the attention mask; pooling
  averages real tokens only. Special tokens the tokenizer adds ([CLS]/[SEP], BOS) count as
  tokens of the prompt. Prompts shorter than ``min_tokens`` (3; curvature needs 3 tokens)
  are skipped and counted.
- Streaming: prompts run through the model in batches; per batch the per-prompt metrics
  are added to running sums and only the mean-pooled vectors of a seeded random subset of
  at most ``n_samples`` prompts are kept (a reservoir: every prompt draws a key from
  ``default_rng(seed)`` in stream order and the smallest keys stay), so memory does not grow
  with the number of prompts and the result does not depend on the batch size. The
  dataset-level and augmentation metrics use that subset (``n_samples`` column = its size).
- Preprocessing is that of the pure functions' defaults (centring + unit norm for the
  entropies and the augmentation metrics; raw states for effective rank and curvature).
- Entropies: linear kernel, Renyi order ``alpha`` (1 = von Neumann) in log base ``base``
  (2 = bits), both recorded in every row. InfoNCE is in nats (temperature 0.1).
- Final norm. Causal LMs (loaded with a head): layer L is the raw residual stream entering
  the final norm (``final_norm`` = "pre", the default, like every other layer), read with a
  hook; "post" takes Hugging Face's ``hidden_states[-1]`` (after the final norm) instead.
  Encoders (BERT-like) have no separate final norm: their hidden states are used as Hugging
  Face returns them and the column holds "none".
- Columns beyond the standard ones: ``depth_fraction`` (layer / L, so models of different
  depth overlay), ``model``, ``n_layers``, ``kind`` ("causal"/"encoder"), ``checkpoint``
  (checkpoint sweeps), ``stress`` and ``stress_value`` (stress sweeps, see
  :mod:`inforidge.stress`). ``split`` is the text source's name; ``step`` the checkpoint's
  training step (empty for a model that is not a checkpoint).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .info.layer_metrics import (
    curvature,
    dataset_entropy,
    dime,
    effective_rank,
    infonce,
    lidar,
    prompt_entropy,
)
from .model import config_num_layers, context_length
from .results import ResultsTable, atomic_write

log = logging.getLogger(__name__)

PROMPT_METRICS = ("prompt_entropy", "prompt_entropy_normalized", "effective_rank", "curvature")
DATASET_METRICS = ("dataset_entropy", "dataset_effective_rank")
AUGMENT_METRICS = ("infonce", "lidar", "dime")
SUITE_METRICS = PROMPT_METRICS + DATASET_METRICS + AUGMENT_METRICS
ENTROPY_METRICS = ("prompt_entropy", "prompt_entropy_normalized", "dataset_entropy", "lidar", "dime")
KINDS = ("auto", "causal", "encoder")
FINAL_NORM_CHOICES = ("pre", "post")
BUILTIN = "builtin"


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


@dataclass
class LayerSuiteSettings:
    """Options of the suite (all recorded in the rows or the report)."""

    batch_size: int = 16
    max_length: int = 128
    """Prompts are truncated to this many tokens (and to the model's position limit)."""
    max_prompts: int | None = 512
    """At most this many prompts are read from the source (the first ones; None: all)."""
    n_samples: int = 256
    """Cap on the prompts entering the dataset-level and augmentation metrics (seeded subset)."""
    alpha: float = 1.0
    base: float = 2.0
    seed: int = 0
    augment: bool = True
    augment_p: float = 0.3
    temperature: float = 0.1
    n_permutations: int = 10
    final_norm: str = "pre"
    min_tokens: int = 3

    def validate(self) -> LayerSuiteSettings:
        for name in ("batch_size", "max_length", "n_samples", "n_permutations"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be an integer >= 1; got {v}")
        if self.max_prompts is not None and (int(self.max_prompts) != self.max_prompts or self.max_prompts < 2):
            raise ValueError(f"max_prompts must be an integer >= 2 or None (all); got {self.max_prompts}")
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 (dataset metrics compare prompts); got {self.n_samples}")
        if self.final_norm not in FINAL_NORM_CHOICES:
            raise ValueError(f"final_norm must be one of {FINAL_NORM_CHOICES}; got {self.final_norm!r}")
        if self.min_tokens < 3:
            raise ValueError(f"min_tokens must be >= 3 (curvature needs 3 tokens); got {self.min_tokens}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        return self


# --------------------------------------------------------------------------------------------
# Text sources
# --------------------------------------------------------------------------------------------


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
    from .tasks.jsonl import iter_json_objects

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
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - datasets is a dependency
        raise ValueError("hf: sources need the `datasets` package (pip install datasets)") from e
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


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


def detect_kind(config) -> str:
    """"causal" or "encoder" from a config's ``architectures`` (or ``is_decoder``)."""
    archs = list(getattr(config, "architectures", None) or [])
    if any(a.endswith(_CAUSAL_SUFFIXES) for a in archs) or getattr(config, "is_decoder", False):
        return "causal"
    if archs:
        return "encoder"
    raise ValueError(
        f"cannot tell whether {getattr(config, 'model_type', '?')} is a causal LM or an encoder (the config "
        "lists no architectures); pass kind='causal' or kind='encoder' (--kind)"
    )


def _model_kind(model) -> str:
    """"causal" for ``...ForCausalLM`` / ``...LMHeadModel`` classes, else "encoder"."""
    return "causal" if type(model).__name__.endswith(_CAUSAL_SUFFIXES) else "encoder"


def load_model(
    name_or_path: str | Path,
    *,
    kind: str = "auto",
    tokenizer: str | Path | None = None,
    revision: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
):
    """Load a model and its tokenizer for the suite; returns ``(model, tokenizer, kind)``.

    kind "auto" reads the config's ``architectures``: ``...ForCausalLM`` / ``...LMHeadModel``
    load with ``AutoModelForCausalLM`` (kind "causal"), anything else with ``AutoModel``
    (kind "encoder"). ``tokenizer`` defaults to ``name_or_path``. A tokenizer without a pad
    token pads with its eos (or unk) token; the mask keeps padding out of every metric.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    kw: dict = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        kw["revision"] = revision
    if kind == "auto":
        kind = detect_kind(AutoConfig.from_pretrained(str(name_or_path), **kw))
    mkw = dict(kw)
    if dtype is not None:
        mkw["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    cls = AutoModelForCausalLM if kind == "causal" else AutoModel
    model = cls.from_pretrained(str(name_or_path), **mkw).eval()
    if device is not None:
        model.to(device)
    tkw = {} if tokenizer is not None else kw
    tok = AutoTokenizer.from_pretrained(str(tokenizer if tokenizer is not None else name_or_path), **tkw)
    return model, tok, kind


class StateReader:
    """Runs batches of token-id sequences through a model and returns every layer's states.

    Causal LMs pad on the tokenizer's side and get position ids that count real tokens only
    (:func:`~inforidge.model.position_ids_from_mask`), so left padding shifts nothing.
    Encoders always pad on the right (absolute position embeddings start at the first token;
    RoBERTa-style models derive positions from the ids themselves).
    """

    def __init__(self, model, tokenizer, *, kind: str = "auto", final_norm: str = "pre",
                 max_length: int = 128, model_name: str | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.kind = _model_kind(model) if kind == "auto" else kind
        if final_norm not in FINAL_NORM_CHOICES:
            raise ValueError(f"final_norm must be one of {FINAL_NORM_CHOICES}; got {final_norm!r}")
        self.final_norm = final_norm if self.kind == "causal" else "none"
        self.model_name = model_name or getattr(model.config, "name_or_path", None) or type(model).__name__
        self.parts = None
        if self.kind == "causal":
            from .model import locate_parts

            self.parts = locate_parts(model)
            self.n_layers = self.parts.num_layers
        else:
            self.n_layers = config_num_layers(model.config)
        limit = self._position_limit()
        self.max_length = int(min(max_length, limit)) if limit else int(max_length)
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.unk_token_id
        self.pad_id = 0 if pad is None else int(pad)
        self.left_pad = self.kind == "causal" and getattr(tokenizer, "padding_side", "right") == "left"

    def _position_limit(self) -> int | None:
        lim = context_length(self.model.config)
        if lim and getattr(self.model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
            lim -= 2  # positions start at padding_idx + 1
        return int(lim) if lim else None

    @property
    def device(self) -> torch.device:
        if self.parts is not None:
            return self.parts.device
        return self.model.get_input_embeddings().weight.device

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text with the tokenizer's special tokens, truncated to max_length."""
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, add_special_tokens=True)
        return [list(map(int, ids)) for ids in enc["input_ids"]]

    def content_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids WITHOUT special tokens (for stress perturbations), not truncated."""
        enc = self.tokenizer(list(texts), add_special_tokens=False)
        return [list(map(int, ids)) for ids in enc["input_ids"]]

    def special_template(self) -> tuple[list[int], list[int]]:
        """(prefix, suffix) ids the tokenizer puts around one text ([CLS] / [SEP], BOS...),
        read off a probe text tokenized with and without special tokens."""
        if getattr(self, "_template", None) is None:
            probe = list(self.tokenizer("a", add_special_tokens=False)["input_ids"])
            full = list(self.tokenizer("a", add_special_tokens=True)["input_ids"])
            n, self._template = len(probe), ([], [])
            for i in range(len(full) - n + 1):
                if full[i : i + n] == probe:
                    self._template = (full[:i], full[i + n :])
                    break
        return self._template

    def with_specials(self, ids: Sequence[int]) -> list[int]:
        """Content ids wrapped in the tokenizer's special tokens, truncated to max_length."""
        pre, post = self.special_template()
        room = max(self.max_length - len(pre) - len(post), 1)
        return [*pre, *list(ids)[:room], *post]

    def pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        t = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), t), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), t), dtype=torch.long)
        for i, s in enumerate(seqs):
            if self.left_pad:
                ids[i, t - len(s):], mask[i, t - len(s):] = torch.tensor(s), 1
            else:
                ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        return ids, mask

    @torch.no_grad()
    def states(self, seqs: Sequence[Sequence[int]]) -> tuple[list[Tensor], Tensor]:
        """(L+1 tensors (B, T, D) on the model's device, mask (B, T) on the same device).

        Raises ValueError when a real token's state is NaN or infinite.
        """
        if any(len(s) == 0 for s in seqs):
            raise ValueError("a prompt tokenised to no tokens; drop empty prompts")
        ids, mask = self.pad(seqs)
        device = self.device
        ids, mask = ids.to(device), mask.to(device)
        if self.kind == "causal":
            from .model import forward_with_final_norm

            cap = forward_with_final_norm(self.parts, ids, mask)
            last = cap.pre_norm if self.final_norm == "pre" else cap.post_norm
            if last is None:
                raise ValueError(f"the final norm {self.parts.final_norm_path} was not called; use final_norm='post'")
            hs = list(cap.hidden_states[:-1]) + [last]
        else:
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hs = list(out.hidden_states)
        if len(hs) != self.n_layers + 1:
            raise ValueError(f"{self.model_name} returned {len(hs)} hidden states for {self.n_layers} layers; expected L+1")
        real = mask.bool()
        for layer, h in enumerate(hs):
            if not bool(torch.isfinite(h[real.to(h.device)]).all()):
                raise ValueError(
                    f"layer {layer} of {self.model_name} has NaN or infinite hidden states on real tokens; "
                    "load the model in float32 (dtype='float32') or check its weights"
                )
        return [h.to(device) for h in hs], mask


# --------------------------------------------------------------------------------------------
# Streaming accumulation
# --------------------------------------------------------------------------------------------


def _pool(h: Tensor, mask: Tensor) -> Tensor:
    """(B, T, D), (B, T) -> (B, D) float64 mean over real tokens."""
    m = mask.to(torch.float64).unsqueeze(-1)
    return (h.to(torch.float64) * m).sum(1) / m.sum(1)


@dataclass
class _Reservoir:
    """The ``cap`` items with the smallest seeded keys: a uniform random subset of a stream."""

    cap: int
    seed: int
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0))
    index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pooled: Tensor | None = None  # (L+1, k, D) float64 on the CPU
    texts: list = field(default_factory=list)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def draw(self, n: int) -> np.ndarray:
        return np.array([self.rng.random() for _ in range(n)])

    def add(self, keys: np.ndarray, index: Sequence[int], pooled: Tensor, texts: Sequence) -> None:
        if not len(keys):
            return
        all_keys = np.concatenate([self.keys, keys])
        all_index = np.concatenate([self.index, np.asarray(index, dtype=np.int64)])
        all_pooled = pooled if self.pooled is None else torch.cat([self.pooled, pooled], 1)
        all_texts = self.texts + list(texts)
        keep = np.sort(np.argsort(all_keys, kind="stable")[: self.cap])
        self.keys, self.index = all_keys[keep], all_index[keep]
        self.pooled = all_pooled[:, torch.as_tensor(keep)]
        self.texts = [all_texts[i] for i in keep]

    def ordered(self) -> tuple[np.ndarray, Tensor | None, list]:
        """Kept items in stream order."""
        order = np.argsort(self.index, kind="stable")
        if self.pooled is None:
            return self.index, None, []
        return self.index[order], self.pooled[:, torch.as_tensor(order)], [self.texts[i] for i in order]


@dataclass
class SuiteResult:
    """What one suite run measured: tidy rows plus the per-layer metric table."""

    rows: list[dict]
    n_prompts: int
    n_skipped: int
    n_layers: int
    sample_texts: list[str] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)

    def wide(self) -> pd.DataFrame:
        """index layer, one column per metric (for correlations)."""
        f = self.frame
        return f.pivot_table(index="layer", columns="metric", values="value", aggfunc="mean")


def _progress(total: int | None, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="prompt", disable=not enabled, leave=False)


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def pooled_features(reader: StateReader, seqs: Sequence[Sequence[int]], batch_size: int,
                    progress: bool = False, desc: str = "pooling") -> Tensor:
    """(L+1, N, D) float64 CPU mean-pooled states of token-id sequences, batched."""
    chunks = []
    with _progress(len(seqs), desc, progress) as bar:
        for batch in _batches(list(seqs), batch_size):
            hs, mask = reader.states(batch)
            chunks.append(torch.stack([_pool(h, mask) for h in hs]).cpu())
            bar.update(len(batch))
    return torch.cat(chunks, 1)


def _run_stream(
    reader: StateReader,
    seqs: Iterable[tuple[int, Sequence[int], object]],
    settings: LayerSuiteSettings,
    total: int | None,
    progress: bool,
    desc: str,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], _Reservoir, int, int]:
    """Stream (index, ids, payload) items through the model in batches.

    Returns per-layer sums and counts of the per-prompt metrics, the reservoir of pooled
    vectors, the number of prompts measured and the number skipped (too short).
    """
    s = settings
    n1 = reader.n_layers + 1
    sums = {m: np.zeros(n1) for m in PROMPT_METRICS}
    counts = {m: np.zeros(n1) for m in PROMPT_METRICS}
    res = _Reservoir(s.n_samples, s.seed)
    measured = skipped = 0
    batch: list[tuple[int, Sequence[int], object, float]] = []

    def flush():
        nonlocal measured
        hs, mask = reader.states([b[1] for b in batch])
        pooled = []
        for layer, h in enumerate(hs):
            z = h.to(torch.float64)
            pe = prompt_entropy(z, mask, s.alpha, s.base)
            vals = {
                "prompt_entropy": pe.raw, "prompt_entropy_normalized": pe.normalized,
                "effective_rank": effective_rank(z, mask), "curvature": curvature(z, mask),
            }
            for m, v in vals.items():
                v = v.detach().cpu().numpy()
                ok = np.isfinite(v)
                sums[m][layer] += v[ok].sum()
                counts[m][layer] += ok.sum()
            pooled.append(_pool(z, mask).cpu())
        res.add(np.array([b[3] for b in batch]), [b[0] for b in batch], torch.stack(pooled), [b[2] for b in batch])
        measured += len(batch)
        batch.clear()

    with _progress(total, desc, progress) as bar:
        for index, ids, payload in seqs:
            bar.update(1)
            key = float(res.draw(1)[0])  # every prompt draws its key, skipped or not: batch-independent
            if len(ids) < s.min_tokens:
                skipped += 1
                continue
            batch.append((index, ids, payload, key))
            if len(batch) >= s.batch_size:
                flush()
        if batch:
            flush()
    return sums, counts, res, measured, skipped


def _row(base: dict, metric: str, layer: int, value: float, n: int, s: LayerSuiteSettings, n_layers: int) -> dict:
    ent = metric in ENTROPY_METRICS
    return {
        **base, "metric": metric, "layer": layer, "value": float(value), "n_samples": int(n),
        "alpha": s.alpha if ent else None, "base": s.base if ent else None,
        "kernel": "linear" if ent else None, "n_permutations": s.n_permutations if metric == "dime" else None,
        "depth_fraction": layer / n_layers,
    }


def _too_few(measured: int, skipped: int, s: LayerSuiteSettings, what: str) -> ValueError:
    return ValueError(
        f"{what}: only {measured} usable prompt(s) ({skipped} skipped for having fewer than {s.min_tokens} "
        "tokens); the dataset-level metrics need at least 2. Give more (or longer) prompts, or raise max_length"
    )


def measure_sequences(
    reader: StateReader,
    seqs: Sequence[Sequence[int]],
    settings: LayerSuiteSettings | None = None,
    *,
    split: str = "texts",
    step: int | None = None,
    texts: Sequence[str] | None = None,
    extra: dict | None = None,
    progress: bool = False,
) -> SuiteResult:
    """The suite on token-id sequences (special tokens included). Augmentation metrics need
    ``texts`` (the prompts the sequences came from) and ``settings.augment``."""
    s = (settings or LayerSuiteSettings()).validate()
    L = reader.n_layers
    payload = list(texts) if texts is not None else [None] * len(seqs)
    items = ((i, list(ids), payload[i]) for i, ids in enumerate(seqs))
    sums, counts, res, measured, skipped = _run_stream(reader, items, s, len(seqs), progress, f"layers {split}")
    if measured < 2:
        raise _too_few(measured, skipped, s, split)
    base = {"step": step, "split": split, "seed": s.seed, "sigma": None, "final_norm": reader.final_norm,
            "label_view": None, "model": reader.model_name, "n_layers": L, "kind": reader.kind, **(extra or {})}
    rows = []
    for m in PROMPT_METRICS:
        for layer in range(L + 1):
            c = counts[m][layer]
            rows.append(_row(base, m, layer, sums[m][layer] / c if c else float("nan"), c, s, L))
    index, pooled, kept_texts = res.ordered()
    dev = reader.device  # dataset-level metrics where the model runs (eigh of D x D on a GPU)
    pooled = pooled.to(dev)
    n = pooled.shape[1]
    de = dataset_entropy(pooled, s.alpha, s.base)
    der = effective_rank(pooled)
    for layer in range(L + 1):
        rows.append(_row(base, "dataset_entropy", layer, de[layer], n, s, L))
        rows.append(_row(base, "dataset_effective_rank", layer, der[layer], n, s, L))
    if s.augment and texts is not None:
        from .augment import augment_pairs, build_augmenter

        aug = build_augmenter(p=s.augment_p)
        copies: list[list[str]] = [[], []]
        for i, t in zip(index, kept_texts, strict=True):
            a, b = augment_pairs([t], seed=s.seed, augmenter=aug, start_index=int(i))
            copies[0] += a
            copies[1] += b
        za = pooled_features(reader, reader.encode(copies[0]), s.batch_size, progress, "augmented A")
        zb = pooled_features(reader, reader.encode(copies[1]), s.batch_size, progress, "augmented B")
        za, zb = za.to(dev), zb.to(dev)
        for layer in range(L + 1):
            rows.append(_row(base, "infonce", layer, infonce(za[layer], zb[layer], s.temperature), n, s, L))
            rows.append(_row(base, "lidar", layer, lidar(torch.stack([za[layer], zb[layer]], 1),
                                                           alpha=s.alpha, base=s.base), n, s, L))
            rows.append(_row(base, "dime", layer, dime(za[layer], zb[layer], s.alpha, s.base,
                                                       n_permutations=s.n_permutations, seed=s.seed), n, s, L))
    return SuiteResult(rows, measured, skipped, L, sample_texts=list(kept_texts))


def measure_layers(
    model,
    tokenizer,
    texts: Sequence[str],
    settings: LayerSuiteSettings | None = None,
    *,
    split: str = "texts",
    step: int | None = None,
    kind: str = "auto",
    model_name: str | None = None,
    extra: dict | None = None,
    progress: bool = False,
) -> SuiteResult:
    """The whole suite for one loaded model on a list of prompts (the Python entry point).

    ``kind`` "auto" treats ``...ForCausalLM`` / ``...LMHeadModel`` classes as causal LMs
    and anything else (``BertModel``...) as an encoder. Rows: see the module docstring.
    """
    s = (settings or LayerSuiteSettings()).validate()
    texts = list(texts)
    if s.max_prompts is not None:
        texts = texts[: s.max_prompts]
    if len(texts) < 2:
        raise ValueError(f"{split}: {len(texts)} prompt(s) given; the suite needs at least 2 (dataset metrics compare prompts)")
    reader = StateReader(model, tokenizer, kind=kind, final_norm=s.final_norm, max_length=s.max_length,
                         model_name=model_name)
    return measure_sequences(reader, reader.encode(texts), s, split=split, step=step, texts=texts,
                             extra=extra, progress=progress)


# --------------------------------------------------------------------------------------------
# Optional parts: sub-layer entropies, downstream probe (other modules, imported lazily)
# --------------------------------------------------------------------------------------------


def sublayer_rows(model, tokenizer, texts: Sequence[str], s: LayerSuiteSettings, *, split: str) -> list[dict]:
    """Rows of ``inforidge.sublayer.sublayer_entropy_rows`` (metric sublayer_prompt_entropy)."""
    from .sublayer import sublayer_entropy_rows

    return sublayer_entropy_rows(model, tokenizer, list(texts), batch_size=s.batch_size, max_length=s.max_length,
                                 alpha=s.alpha, base=s.base, seed=s.seed, split=split, min_tokens=s.min_tokens)


def probe_and_correlate(
    reader: StateReader,
    texts: Sequence[str],
    labels: np.ndarray,
    metrics: pd.DataFrame,
    s: LayerSuiteSettings,
    *,
    folds: int = 5,
    progress: bool = False,
) -> tuple[pd.Series, pd.DataFrame]:
    """Per-layer linear-probe accuracy on mean-pooled features and its correlation with each metric.

    Uses ``inforidge.downstream.probe_scores`` and ``metric_score_correlations``. Returns
    (score by layer, one row per metric with spearman / kendall / dcor).
    """
    from .downstream import metric_score_correlations, probe_scores

    feats = pooled_features(reader, reader.encode(texts), s.batch_size, progress, "probe features")
    features = {layer: feats[layer].numpy() for layer in range(feats.shape[0])}
    score = probe_scores(features, np.asarray(labels), folds=folds, seed=s.seed)
    cols = [c for c in metrics.columns if c in SUITE_METRICS]
    corr = metric_score_correlations(metrics[cols], score)
    return score, corr


# --------------------------------------------------------------------------------------------
# End to end: models or checkpoint sweeps -> table, figures, report
# --------------------------------------------------------------------------------------------


@dataclass
class LayersOutput:
    """What :func:`run_layers` wrote."""

    out_dir: Path
    frame: pd.DataFrame
    report_path: Path
    figures: dict[str, Path]
    correlations: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Target:
    label: str
    source: str
    step: int | None = None
    revision: str | None = None
    checkpoint: str | None = None
    tokenizer: str | None = None


def _label(model: str) -> str:
    """The ``model`` column: a hub name as given, a folder's name (``parent/model`` for a
    folder called ``model``, as in our run folders)."""
    p = Path(model)
    if not p.exists():
        return model
    p = p.resolve()
    return f"{p.parent.name}/{p.name}" if p.name == "model" else p.name


def _targets(model: str, checkpoints: str | None, tokenizer: str | None) -> list[_Target]:
    if checkpoints is None:
        return [_Target(_label(model), model, tokenizer=tokenizer)]
    from .sweep import TOKENIZER_FILES, discover_checkpoints, resolve_checkpoints

    items = [c.strip() for c in checkpoints.split(",") if c.strip()]
    folder = Path(model)
    hub = None if folder.is_dir() else model
    if items in ([], ["all"]):
        if hub is not None:
            raise ValueError(f"{model} is not a folder; list its revisions to sweep (--checkpoints step0,step1000)")
        ckpts = discover_checkpoints(folder)
    else:
        ckpts = resolve_checkpoints(folder, items, hub)
    fallback = tokenizer
    if fallback is None and folder.is_dir():
        fallback = next((str(p) for p in (folder / "model", folder)
                         if any((p / f).exists() for f in TOKENIZER_FILES)), None)
    out = []
    for c in ckpts:
        tok = tokenizer or (c.source if c.has_tokenizer() else fallback)
        if tok is None:
            raise ValueError(f"checkpoint {c.name} has no tokenizer files and none was found beside it; pass tokenizer=")
        out.append(_Target(_label(model), c.source, c.step, c.revision, c.name, tok))
    return out


MANIFEST = "layers.json"


def _resume_or_reset(out_dir: Path, manifest: dict) -> bool:
    """True when ``out_dir`` holds a run of the same settings (resume it); otherwise clear its
    tables, record the new settings and return False."""
    path = out_dir / MANIFEST
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    if path.exists() and path.read_text() == text:
        return True
    if (out_dir / "results.parquet").exists():
        log.warning("%s holds a layers run with other settings: starting over (its tables are replaced)", out_dir)
    for stale in ("results.parquet", "results.csv", "correlations.csv"):
        (out_dir / stale).unlink(missing_ok=True)
    atomic_write(path, lambda p: p.write_text(text))
    return False


def _finished_targets(frame: pd.DataFrame) -> set[tuple[str, int | None]]:
    """(model label, step) of every model/checkpoint with rows in the table."""
    if frame.empty or "model" not in frame:
        return set()
    pairs = frame[["model", "step"]].drop_duplicates()
    return {(str(m), None if pd.isna(st) else int(st)) for m, st in pairs.itertuples(index=False)}


def run_layers(
    models: Sequence[str],
    source: str | Path = BUILTIN,
    out: str | Path = "runs/layers",
    settings: LayerSuiteSettings | None = None,
    *,
    kind: str = "auto",
    tokenizer: str | None = None,
    text_field: str = "text",
    unit: str = "line",
    hf_split: str = "test",
    checkpoints: str | None = None,
    repetition: Sequence[float] = (),
    randomness: Sequence[float] = (),
    lengths: Sequence[int] = (),
    sublayers: bool = False,
    probe_data: str | Path | None = None,
    probe_text_field: str = "text",
    probe_label_field: str = "label",
    probe_folds: int = 5,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    figures: bool = True,
    progress: bool = True,
) -> LayersOutput:
    """What ``inforidge layers`` does: the suite for each model (or each checkpoint of each
    run folder when ``checkpoints`` is "all" or a comma list), optional stress sweeps,
    sub-layer entropies and a downstream probe; then ``<out>/results.parquet|csv``,
    ``<out>/figures/*.png`` (x = depth fraction, models/checkpoints overlaid),
    ``<out>/correlations.csv`` (with a probe) and ``<out>/report.md``. Each model/checkpoint's
    rows are written as soon as it is measured; a second call with the same settings and ``out``
    resumes (skips what is in the table), other settings start ``out`` over.

    Correlations between each metric and the probe accuracy across layers go to
    correlations.csv (columns model, step, checkpoint, metric, spearman, kendall, dcor...)
    and the report, not to the results table. Sub-layer entropies
    (``inforidge.sublayer``) use the first ``n_samples`` prompts. A table already in
    ``out`` is replaced. Missing optional modules (sublayer, downstream) give a note, not
    an error.
    """
    from .layers_report import save_layer_figures, write_layers_report

    s = (settings or LayerSuiteSettings()).validate()
    if not models:
        raise ValueError("no model given; pass at least one model name or folder")
    if device is None and torch.cuda.is_available():
        device = "cuda"
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = load_texts(source, text_field=text_field, unit=unit, max_prompts=s.max_prompts, hf_split=hf_split)
    if len(src.texts) < 2:
        raise ValueError(f"{src.name}: {len(src.texts)} prompt; the suite needs at least 2")
    probe = None
    if probe_data is not None:
        from .downstream import load_labelled_texts

        probe = load_labelled_texts(probe_data, text_field=probe_text_field, label_field=probe_label_field)
    resumed = _resume_or_reset(out_dir, {
        "source": str(source), "text_field": text_field, "unit": unit, "hf_split": hf_split,
        "settings": dataclasses.asdict(s), "kind": kind, "tokenizer": tokenizer, "dtype": dtype,
        "repetition": [float(p) for p in repetition], "randomness": [float(p) for p in randomness],
        "lengths": [int(n) for n in lengths], "sublayers": sublayers,
        "probe_data": None if probe_data is None else str(probe_data), "probe_folds": probe_folds,
        "probe_fields": [probe_text_field, probe_label_field],
    })
    table = ResultsTable(out_dir)
    done = _finished_targets(table.frame) if resumed else set()
    corr_path = out_dir / "correlations.csv"
    corr_frames: list[pd.DataFrame] = [pd.read_csv(corr_path)] if resumed and corr_path.exists() else []
    notes: list[str] = []
    targets = [t for m in models for t in _targets(str(m), checkpoints, tokenizer)]
    todo = [t for t in targets if (t.label, t.step) not in done]
    if len(todo) < len(targets):
        notes.append(f"resumed: {len(targets) - len(todo)} of {len(targets)} model(s)/checkpoint(s) were already "
                     f"measured in {out_dir} with the same settings")
    from tqdm.auto import tqdm

    for t in tqdm(todo, desc="models", disable=not progress or len(todo) < 2):
        model, tok, k = load_model(t.source, kind=kind, tokenizer=t.tokenizer, revision=t.revision, device=device,
                                   dtype=dtype, trust_remote_code=trust_remote_code)
        reader = StateReader(model, tok, kind=k, final_norm=s.final_norm, max_length=s.max_length, model_name=t.label)
        context = {"checkpoint": t.checkpoint} if t.checkpoint is not None else {}
        res = measure_sequences(reader, reader.encode(src.texts), s, split=src.name, step=t.step, texts=src.texts,
                                extra=context, progress=progress)
        # One append per model/checkpoint: a target with rows in the table is complete (resume).
        rows = list(res.rows)
        if res.n_skipped:
            notes.append(f"{t.label}{'' if t.step is None else f' step {t.step}'}: {res.n_skipped} prompt(s) "
                         f"shorter than {s.min_tokens} tokens skipped")
        if repetition or randomness or lengths:
            from .stress import stress_rows

            rows += stress_rows(reader, src.texts, s, repetition=repetition, randomness=randomness,
                                lengths=lengths, split=src.name, step=t.step, extra=context, progress=progress)
        ctx = {"step": t.step, "model": t.label, "n_layers": reader.n_layers, "kind": reader.kind, **context}
        if sublayers:
            # Sub-layer rows carry their own depth_fraction; this run's identity goes on top.
            rows += [{**r, **ctx} for r in sublayer_rows(model, tok, src.texts[: s.n_samples], s, split=src.name)]
        if probe is not None:
            score, corr = probe_and_correlate(reader, probe[0], probe[1], res.wide(), s, folds=probe_folds,
                                              progress=progress)
            pname = Path(probe_data).stem
            rows += [{**ctx, "split": pname, "metric": "probe_accuracy", "layer": int(layer),
                      "value": float(v), "seed": s.seed, "n_samples": len(probe[0]),
                      "final_norm": reader.final_norm, "depth_fraction": int(layer) / reader.n_layers}
                     for layer, v in score.items()]
            corr = corr.copy()
            corr.insert(0, "checkpoint", t.checkpoint)
            corr.insert(0, "step", t.step)
            corr.insert(0, "model", t.label)
            corr_frames.append(corr)
            merged = pd.concat(corr_frames, ignore_index=True)
            atomic_write(corr_path, lambda p, f=merged: f.to_csv(p, index=False))
        table.append(rows)
        del model, reader
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    df = table.frame
    correlations = pd.concat(corr_frames, ignore_index=True) if corr_frames else None
    figs = save_layer_figures(df, out_dir / "figures") if figures else {}
    report = write_layers_report(df, out_dir, figs, settings=s, source=src.name, n_prompts=len(src.texts),
                                 correlations=correlations, notes=notes)
    return LayersOutput(out_dir, df, report, figs, correlations, notes)


__all__ = [
    "AUGMENT_METRICS", "DATASET_METRICS", "PROMPT_METRICS", "SUITE_METRICS",
    "LayerSuiteSettings", "StateReader", "SuiteResult", "TextSource",
    "builtin_corpus", "detect_kind", "load_model", "load_texts",
    "LayersOutput", "measure_layers", "measure_sequences", "run_layers", "pooled_features", "probe_and_correlate", "sublayer_rows",
]
