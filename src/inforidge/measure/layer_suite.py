"""The Layer-by-Layer representation suite (Skean et al. 2025; METHOD §7), end to end.

For a model (a causal LM or an encoder such as BERT) and a text source, every metric of
:mod:`inforidge.info.layer_metrics` is computed for every layer 0..L (0 = embedding
output, l = output of block l) and written as tidy rows of a
:class:`~inforidge.results.table.ResultsTable`:

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
  :mod:`inforidge.tasks.perturb`). ``split`` is the text source's name; ``step`` the checkpoint's
  training step (empty for a model that is not a checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from inforidge.config.settings import WITHOUT_FIRST, LayerSuiteSettings
from inforidge.extract.token_states import StateReader, _pool
from inforidge.info.layer_metrics import (
    curvature,
    dataset_entropy,
    dime,
    dominant_tokens,
    effective_rank,
    infonce,
    lidar,
    prompt_entropy,
)
from inforidge.measure.probes import metric_score_correlations, probe_scores
from inforidge.measure.sublayer import sublayer_entropy_rows
from inforidge.tasks.augment import augment_pairs, build_augmenter
from inforidge.tasks.tokenize import check_unknown_tokens

PROMPT_METRICS = ("prompt_entropy", "prompt_entropy_normalized", "effective_rank", "curvature")


DATASET_METRICS = ("dataset_entropy", "dataset_effective_rank")


AUGMENT_METRICS = ("infonce", "lidar", "dime")


SUITE_METRICS = PROMPT_METRICS + DATASET_METRICS + AUGMENT_METRICS


ENTROPY_METRICS = ("prompt_entropy", "prompt_entropy_normalized", "dataset_entropy", "lidar", "dime")


MASSIVE_METRICS = ("massive_token_share", "massive_token_ratio", "massive_token_position", "massive_dimension")


def exclude_positions(mask: Tensor, how: str, prefix: int = 0, suffix: int = 0) -> Tensor:
    """(B, T) mask with positions taken out: "none"; "first" (each prompt's first real token);
    "special" (its first ``prefix`` and last ``suffix`` real tokens, the tokenizer's additions).
    Real tokens are contiguous (padding on one side)."""
    if how == "none":
        return mask
    real = mask.bool()
    lengths = real.sum(-1, keepdim=True)
    rank = real.to(torch.long).cumsum(-1) - 1  # index among real tokens, on real positions
    if how == "first":
        prefix, suffix = 1, 0
    elif how != "special":
        raise ValueError(f"exclude_positions must be 'none', 'first' or 'special'; got {how!r}")
    drop = (rank < prefix) | (rank >= lengths - suffix)
    return (real & ~drop).to(mask.dtype)


def _mode(values: np.ndarray) -> float:
    if not len(values):
        return float("nan")
    uniq, count = np.unique(values, return_counts=True)
    return float(uniq[np.argmax(count)])


@dataclass
class _Variant:
    """Running sums of the per-prompt metrics and the pooled reservoir of one position mask."""

    excluded: str
    sums: dict
    counts: dict
    reservoir: _Reservoir


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
        return f.pivot_table(index="layer", columns="metric", values="value", aggfunc="mean", observed=True)


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
) -> tuple[list[_Variant], dict[str, list], int, int]:
    """Stream (index, ids, payload) items through the model in batches.

    Returns one :class:`_Variant` per position mask (the settings' own first, then "first"
    excluded when ``compare_first_excluded``), the per-prompt dominant-token statistics per
    layer (on all real tokens), the number of prompts measured and the number skipped (too short).
    """
    s = settings
    n1 = reader.n_layers + 1
    prefix, suffix = (len(t) for t in reader.special_template()) if s.exclude_positions == "special" else (0, 0)

    def variant(excluded: str) -> _Variant:
        return _Variant(excluded, {m: np.zeros(n1) for m in PROMPT_METRICS}, {m: np.zeros(n1) for m in PROMPT_METRICS},
                        _Reservoir(s.n_samples, s.seed))

    variants = [variant(s.exclude_positions)]
    if s.compare_first_excluded and s.exclude_positions == "none":
        variants.append(variant("first"))
    dominant: dict[str, list] = {k: [[] for _ in range(n1)] for k in ("ratio", "position", "dimension")}
    measured = skipped = 0
    batch: list[tuple[int, Sequence[int], object, float]] = []

    def flush():
        nonlocal measured
        hs, mask = reader.states([b[1] for b in batch])
        keys = np.array([b[3] for b in batch])
        masks = [exclude_positions(mask, v.excluded, prefix, suffix) for v in variants]
        # Prompts that keep min_tokens after the exclusion (the main mask keeps them all).
        kept = [m.sum(-1) >= s.min_tokens for m in masks]
        pooled = [[] for _ in variants]
        for layer, h in enumerate(hs):
            z = h.to(torch.float64)
            dom = dominant_tokens(z, mask)
            for k in dominant:
                dominant[k][layer].append(getattr(dom, k).cpu().numpy())
            for v, m, ok, out in zip(variants, masks, kept, pooled, strict=True):
                zk, mk = z[ok], m[ok]
                if not len(zk):
                    continue
                pe = prompt_entropy(zk, mk, s.alpha, s.base)
                vals = {
                    "prompt_entropy": pe.raw, "prompt_entropy_normalized": pe.normalized,
                    "effective_rank": effective_rank(zk, mk), "curvature": curvature(zk, mk),
                }
                for name, val in vals.items():
                    val = val.detach().cpu().numpy()
                    fin = np.isfinite(val)
                    v.sums[name][layer] += val[fin].sum()
                    v.counts[name][layer] += fin.sum()
                out.append(_pool(zk, mk).cpu())
        for v, ok, out in zip(variants, kept, pooled, strict=True):
            sel = ok.cpu().numpy()
            if out:
                v.reservoir.add(keys[sel], [b[0] for b, k in zip(batch, sel, strict=True) if k], torch.stack(out),
                                [b[2] for b, k in zip(batch, sel, strict=True) if k])
        measured += len(batch)
        batch.clear()

    draws = variants[0].reservoir  # keys come from the first variant's stream: same subset for all
    with _progress(total, desc, progress) as bar:
        for index, ids, payload in seqs:
            bar.update(1)
            key = float(draws.draw(1)[0])  # every prompt draws its key, skipped or not: batch-independent
            if len(ids) < s.min_tokens:
                skipped += 1
                continue
            batch.append((index, ids, payload, key))
            if len(batch) >= s.batch_size:
                flush()
        if batch:
            flush()
    dom = {k: [np.concatenate(v) if v else np.zeros(0) for v in per_layer] for k, per_layer in dominant.items()}
    return variants, dom, measured, skipped


def _massive_rows(base: dict, dom: dict, s: LayerSuiteSettings, n_layers: int) -> list[dict]:
    """Per layer: the share of prompts with a dominant token (norm >= massive_ratio x the prompt's
    median), the median ratio, and where it sits (most common real-token position and
    dimension among those prompts; no such rows where no prompt has one)."""
    rows = []
    for layer in range(n_layers + 1):
        ratio = dom["ratio"][layer]
        hit = ratio >= s.massive_ratio
        values = {
            "massive_token_share": float(hit.mean()) if len(ratio) else float("nan"),
            "massive_token_ratio": float(np.median(ratio)) if len(ratio) else float("nan"),
            "massive_token_position": _mode(dom["position"][layer][hit]),
            "massive_dimension": _mode(dom["dimension"][layer][hit]),
        }
        rows += [{**_row(base, m, layer, v, len(ratio), s, n_layers), "massive_ratio": s.massive_ratio}
                 for m, v in values.items() if np.isfinite(v)]
    return rows


def _row(base: dict, metric: str, layer: int, value: float, n: int, s: LayerSuiteSettings, n_layers: int) -> dict:
    ent = metric in ENTROPY_METRICS
    return {
        "excluded_positions": s.exclude_positions, "flag": None,
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
    variants, dom, measured, skipped = _run_stream(reader, items, s, len(seqs), progress, f"layers {split}")
    if measured < 2:
        raise _too_few(measured, skipped, s, split)
    base = {"step": step, "split": split, "seed": s.seed, "sigma": None, "final_norm": reader.final_norm,
            "label_view": None, "model": reader.model_name, "n_layers": L, "kind": reader.kind, **(extra or {})}
    rows = _massive_rows(base, dom, s, L)
    massive = {r["layer"] for r in rows if r["metric"] == "massive_token_share" and r["value"] >= 0.5}
    dev = reader.device  # dataset-level metrics where the model runs (eigh of D x D on a GPU)
    for v in variants:
        vbase = {**base, "excluded_positions": v.excluded}
        vrows = []
        for m in PROMPT_METRICS:
            for layer in range(L + 1):
                c = v.counts[m][layer]
                vrows.append(_row(vbase, m, layer, v.sums[m][layer] / c if c else float("nan"), c, s, L))
        index, pooled, kept_texts = v.reservoir.ordered()
        if pooled is not None and pooled.shape[1] >= 2:
            pooled = pooled.to(dev)
            n = pooled.shape[1]
            de = dataset_entropy(pooled, s.alpha, s.base)
            der = effective_rank(pooled)
            for layer in range(L + 1):
                vrows.append(_row(vbase, "dataset_entropy", layer, de[layer], n, s, L))
                vrows.append(_row(vbase, "dataset_effective_rank", layer, der[layer], n, s, L))
        for r in vrows:  # the excluded view is the check; the flag marks the curve it may distort
            if v is not variants[0]:
                r["metric"] += WITHOUT_FIRST
            elif v.excluded == "none" and r["layer"] in massive:
                r["flag"] = "massive_activation"
        rows += vrows
    index, pooled, kept_texts = variants[0].reservoir.ordered()
    pooled = pooled.to(dev)
    n = pooled.shape[1]
    if s.augment and texts is not None:

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
    allow_unknown_tokens: bool = False,
) -> SuiteResult:
    """The whole suite for one loaded model on a list of prompts (the Python entry point).

    ``kind`` "auto" treats ``...ForCausalLM`` / ``...LMHeadModel`` classes as causal LMs
    and anything else (``BertModel``...) as an encoder. Rows: see the module docstring.
    Prompts that are mostly the tokenizer's unknown token are refused unless
    ``allow_unknown_tokens`` (:func:`~inforidge.tasks.tokenize.check_unknown_tokens`).
    """
    s = (settings or LayerSuiteSettings()).validate()
    texts = list(texts)
    if s.max_prompts is not None:
        texts = texts[: s.max_prompts]
    if len(texts) < 2:
        raise ValueError(f"{split}: {len(texts)} prompt(s) given; the suite needs at least 2 (dataset metrics compare prompts)")
    check_unknown_tokens(tokenizer, texts, split, allow=allow_unknown_tokens)
    reader = StateReader(model, tokenizer, kind=kind, final_norm=s.final_norm, max_length=s.max_length,
                         model_name=model_name)
    return measure_sequences(reader, reader.encode(texts), s, split=split, step=step, texts=texts,
                             extra=extra, progress=progress)


def sublayer_rows(model, tokenizer, texts: Sequence[str], s: LayerSuiteSettings, *, split: str) -> list[dict]:
    """Rows of ``inforidge.measure.sublayer.sublayer_entropy_rows`` (metric sublayer_prompt_entropy)."""

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

    Uses ``inforidge.measure.probes.probe_scores`` and ``metric_score_correlations``. Returns
    (score by layer, one row per metric with spearman / kendall / dcor).
    """

    feats = pooled_features(reader, reader.encode(texts), s.batch_size, progress, "probe features")
    features = {layer: feats[layer].numpy() for layer in range(feats.shape[0])}
    score = probe_scores(features, np.asarray(labels), folds=folds, seed=s.seed)
    cols = [c for c in metrics.columns if c in SUITE_METRICS]
    corr = metric_score_correlations(metrics[cols], score)
    return score, corr
