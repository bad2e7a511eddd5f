"""Multi-token generation: information per decoding step and layer (METHOD §5; paper §6).

Data flow: prompts -> greedy (or seeded sampled) generation of T tokens in left-padded
batches, capturing in the SAME pass every layer's state at the last position of every
decoding step (``model.generate(output_hidden_states=True)`` plus a hook on the final norm
for the raw "pre" view) -> target Gram from the sequence kernel over the gold targets' token
embeddings -> I(h_l^(t); Y) per step t and layer l with the permutation null -> tidy rows.

Conventions:

- Step t = 0..T-1 is the forward pass that predicts generated token t: step 0 reads the
  prompt's last position, step t the position of generated token t-1 (its input is the prompt
  plus the first t generated tokens).
- Layers 0..L as everywhere (0 = embedding output); layer L in two views, "post" (after the
  final norm, as Hugging Face returns it) and "pre" (the raw residual stream), as extract.py.
- T tokens are always generated: EOS does not stop a sequence (generation continues after it
  as the model would), so every step has N states; how many sequences produced EOS is reported.
- Y^(i) is the gold target (e.g. the CNN/DailyMail highlights) as the set of the model's own
  input token embeddings of its tokens (``get_input_embeddings()``, no position embedding:
  METHOD §5 treats Y as a set of token embeddings y_ia), each L2-normalised, compared by the
  sequence kernel :func:`~inforidge.info.sequence_gram` (mean of pairwise Gaussian kernels).
- Prompts longer than the context minus T are cut from the LEFT (a leading BOS is kept), with
  one warning counting them.
- Content vs stopwords (paper Fig. 8): each generated token is classified by
  :mod:`inforidge.stopwords`. For a group (content; stopwords and punctuation) every sample
  that generated at least one such token contributes ONE state, at one of those steps drawn at
  random (seeded), so the N states have N distinct targets; both groups use the same N (the
  smaller group's count) because the estimator depends on N. Repeated over ``type_seeds``.
  These rows have ``step = -1`` (pooled over steps) and ``split`` = the group.

Rows (``ResultsTable``): per step, ``split`` = the data split, ``token_group = "all"``, metrics
``sequence_information`` (raw), ``sequence_information_null`` / ``_null_std`` (permutation
null mean / std), ``sequence_information_corrected`` (raw minus null mean),
``representation_entropy`` (per layer) and ``target_entropy`` (layer -1), in ``log(base)``
units (bits by default); plus columns ``max_new_tokens`` and ``do_sample``.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .extract import FINAL_NORM_VIEWS
from .info import gram_matrix, information_from_grams
from .info.sequence_kernel import sequence_gram
from .model import ModelParts, context_length, locate_parts
from .stopwords import GROUPS, STOPWORDS_SOURCE, group_of, token_types

log = logging.getLogger(__name__)

SEQUENCE_METRIC = "sequence_information"
TYPE_GROUPS = tuple(GROUPS)  # ("content", "stopword")


@dataclass
class GenerationSettings:
    """How tokens are generated (recorded in the report)."""

    max_new_tokens: int = 50
    """T, tokens generated per prompt (paper: 50)."""
    do_sample: bool = False
    """Sample instead of greedy decoding (the paper is greedy)."""
    seed: int = 0
    """Seed of sampling (each batch b uses seed + b); greedy output does not depend on it."""
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 = no top-k cut."""
    batch_size: int = 8
    """Prompts per generate() call (left padded)."""
    max_target_tokens: int | None = None
    """Cut gold targets to their first this-many tokens (None = whole targets)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1; got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")


@dataclass
class SequenceInfoSettings:
    """How the information is estimated (recorded with every row)."""

    n_permutations: int = 20
    alpha: float = 1.0
    base: float = 2.0
    sigma: float | str = 1.0
    """Gaussian bandwidth of the state kernel (on L2-normalised states)."""
    target_sigma: float | str = 1.0
    """Gaussian bandwidth of the token kernel inside the sequence kernel."""
    final_norm_views: list[str] = field(default_factory=lambda: ["post", "pre"])
    seed: int = 0
    """Seed of the permutation null."""
    type_seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    """Draws of the content/stopword split (step choice and equal-size subsample)."""
    min_type_samples: int = 4
    """Fewer samples than this in either group: the content/stopword split is skipped."""

    def __post_init__(self) -> None:
        bad = [v for v in self.final_norm_views if v not in FINAL_NORM_VIEWS]
        if bad or not self.final_norm_views:
            raise ValueError(f"final_norm_views must be a non-empty subset of {FINAL_NORM_VIEWS}; got {self.final_norm_views}")
        if self.n_permutations < 0:
            raise ValueError(f"n_permutations must be >= 0; got {self.n_permutations}")

    def row_settings(self) -> dict:
        return {"alpha": self.alpha, "kernel": "gaussian", "sigma": str(self.sigma), "base": self.base,
                "label_view": "token_embedding", "n_permutations": self.n_permutations,
                "target_kernel": "sequence_mean_gaussian", "target_sigma": str(self.target_sigma)}


@dataclass
class GeneratedStates:
    """States captured during generation of T tokens for N prompts.

    hidden: (T, L+1, N, D) float32 CPU, state at the last position of step t; layer L is the
        raw residual stream entering the final norm ("pre").
    final_normed: (T, N, D) layer L after the final norm ("post").
    generated_ids: (N, T) the generated token ids (token t is predicted by step t).
    prompt_lengths: (N,) prompt tokens actually fed (after any left truncation).
    n_truncated: how many prompts were cut from the left.
    types: N lists of T token types ('content', 'stopword', 'punctuation', 'special').
    texts: N generated texts (special tokens skipped).
    """

    hidden: Tensor
    final_normed: Tensor
    generated_ids: Tensor
    prompt_lengths: Tensor
    n_truncated: int
    types: list[list[str]]
    texts: list[str]

    @property
    def n_steps(self) -> int:
        return self.hidden.shape[0]

    def stack(self, final_norm: str = "post") -> Tensor:
        """(T, L+1, N, D) layers 0..L per step in the chosen final-norm view."""
        if final_norm == "pre":
            return self.hidden
        if final_norm == "post":
            return torch.cat([self.hidden[:, :-1], self.final_normed[:, None]], 1)
        raise ValueError(f"final_norm must be one of {FINAL_NORM_VIEWS}; got {final_norm!r}")

    def views_stacked(self, views: Sequence[str]) -> tuple[Tensor, dict[str, Tensor]]:
        """(T, M, N, D) with layers 0..L-1 shared and one layer-L entry per view, and per view
        the L+1 indices into the M axis (one estimator call covers every view)."""
        n = self.hidden.shape[1] - 1
        last = {"post": self.final_normed, "pre": self.hidden[:, -1]}
        stack = torch.cat([self.hidden[:, :n], torch.stack([last[v] for v in views], 1)], 1)
        index = {v: torch.cat([torch.arange(n), torch.tensor([n + i])]) for i, v in enumerate(views)}
        return stack, index

    def group_mask(self) -> dict[str, np.ndarray]:
        """{group: (N, T) bool} where the token generated at step t belongs to the group."""
        groups = np.array([[group_of(k) or "" for k in row] for row in self.types])
        return {g: groups == g for g in TYPE_GROUPS}


def prompt_token_ids(tokenizer, prompts: Sequence[str], budget: int | None) -> tuple[list[list[int]], int]:
    """Token ids of each prompt (with the tokenizer's special tokens), cut from the LEFT to
    ``budget`` tokens (a leading BOS stays); returns the ids and how many prompts were cut."""
    enc = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    out, cut = [], 0
    for i, ids in enumerate(enc):
        if not ids:
            raise ValueError(f"prompt {i} tokenises to no tokens; every prompt needs at least one token")
        if budget is not None and len(ids) > budget:
            cut += 1
            keep_bos = bos is not None and ids[0] == bos and budget > 1
            ids = [bos] + ids[len(ids) - budget + 1:] if keep_bos else ids[len(ids) - budget:]
        out.append(ids)
    return out, cut


def _left_pad(rows: list[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids, mask


def _pad_id(tokenizer, model) -> int:
    for v in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "eos_token_id", None),
              getattr(model.config, "pad_token_id", None)):
        if isinstance(v, int):
            return v
    return 0


@torch.no_grad()
def _generate_batch(parts: ModelParts, ids: Tensor, mask: Tensor, gen: GenerationSettings, pad_id: int,
                    seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """One generate() call; returns hidden (T, L+1, B, D), post (T, B, D), new ids (B, T)."""
    from transformers import GenerationConfig

    model = parts.model
    device = parts.device
    ids, mask = ids.to(device), mask.to(device)
    pre, post = [], []

    def grab(_module, args, kwargs, output):
        h_in = args[0] if args else kwargs["hidden_states"]
        h_out = output[0] if isinstance(output, tuple) else output
        pre.append(h_in[:, -1].detach().float().cpu())
        post.append(h_out[:, -1].detach().float().cpu())

    config = GenerationConfig(
        max_new_tokens=gen.max_new_tokens, min_new_tokens=0, do_sample=gen.do_sample,
        temperature=gen.temperature if gen.do_sample else None, top_p=gen.top_p if gen.do_sample else None,
        top_k=gen.top_k if gen.do_sample else None, num_beams=1, eos_token_id=None, pad_token_id=pad_id,
        output_hidden_states=True, return_dict_in_generate=True, use_cache=True,
    )
    handle = parts.final_norm.register_forward_hook(grab, with_kwargs=True)
    devices = [device] if device.type == "cuda" else []
    # generate() fills fields of the passed config left at their defaults from the model's own
    # generation config (an eos_token_id that stops a sequence early; do_sample, top_p or a
    # repetition penalty of a hub checkpoint that would make "greedy" not greedy): during the call
    # the model's generation config is ours alone.
    saved = model.generation_config
    model.generation_config = copy.deepcopy(config)
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    finally:
        handle.remove()
        model.generation_config = saved
    t = gen.max_new_tokens
    steps = out.hidden_states
    if len(steps) != t or out.sequences.shape[1] != ids.shape[1] + t:
        raise ValueError(
            f"generate() ran {len(steps)} steps / returned {out.sequences.shape[1] - ids.shape[1]} new tokens, "
            f"expected {t}: a stopping criterion of the model's generation config ended it early"
        )
    if len(pre) != t:
        raise ValueError(
            f"the final norm {parts.final_norm_path} was called {len(pre)} times in {t} decoding steps; "
            "pass final_norm_path naming the norm applied once before the LM head"
        )
    n_layers = parts.num_layers
    if len(steps[0]) != n_layers + 1:
        raise ValueError(f"generate() returned {len(steps[0])} hidden states for {n_layers} blocks; check block_path")
    hidden = torch.stack([
        torch.stack([h[:, -1].detach().float().cpu() for h in step[:n_layers]] + [pre[i]]) for i, step in enumerate(steps)
    ])
    return hidden, torch.stack(post), out.sequences[:, ids.shape[1]:].cpu()


def generate_with_states(parts: ModelParts, tokenizer, prompts: Sequence[str],
                         settings: GenerationSettings | None = None, *, progress: bool = False) -> GeneratedStates:
    """Generate ``settings.max_new_tokens`` tokens per prompt and capture the states of every
    step and layer at the last position, in the generation pass itself (no re-run per step).

    Prompts are batched with left padding (``attention_mask`` and mask-derived position ids:
    padding does not shift positions) and cut from the left to the context minus T.
    """
    gen = settings or GenerationSettings()
    if len(prompts) == 0:
        raise ValueError("no prompts to generate from; the dataset is empty")
    model = parts.model
    limit = context_length(model.config)
    t = gen.max_new_tokens
    if limit is not None and t >= limit:
        raise ValueError(f"max_new_tokens={t} leaves no room for a prompt in the model's {limit} positions; "
                         "lower --max-new-tokens")
    rows, cut = prompt_token_ids(tokenizer, prompts, None if limit is None else limit - t)
    if cut:
        log.warning("%d of %d prompts were longer than %d tokens (the model's %d positions minus %d new tokens) "
                    "and were truncated from the left", cut, len(rows), limit - t, limit, t)
    pad = _pad_id(tokenizer, model)
    was_training = model.training
    model.eval()
    chunks = []
    starts = range(0, len(rows), gen.batch_size)
    try:
        from tqdm.auto import tqdm

        for b, i in enumerate(tqdm(starts, desc="generate", disable=not progress)):
            ids, mask = _left_pad(rows[i:i + gen.batch_size], pad)
            chunks.append(_generate_batch(parts, ids, mask, gen, pad, gen.seed + b))
    finally:
        model.train(was_training)
    hidden = torch.cat([c[0] for c in chunks], 2)
    post = torch.cat([c[1] for c in chunks], 1)
    new = torch.cat([c[2] for c in chunks], 0)
    for name, x in (("hidden states", hidden), ("final-norm states", post)):
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            where = torch.nonzero(bad)[0].tolist()
            raise ValueError(
                f"the {name} contain {int(bad.sum())} NaN/inf values (first at index {where}); the model overflows "
                "in its dtype: load it in float32 (or bfloat16 instead of float16)"
            )
    new_rows = new.tolist()
    types = [token_types(tokenizer, r) for r in new_rows]
    texts = [tokenizer.decode(r, skip_special_tokens=True) for r in new_rows]
    return GeneratedStates(hidden, post, new, torch.tensor([len(r) for r in rows]), cut, types, texts)


def target_embeddings(parts: ModelParts, tokenizer, targets: Sequence[str],
                      max_tokens: int | None = None) -> tuple[Tensor, Tensor, list[list[int]]]:
    """The gold targets as padded input-token embeddings: (N, T_max, D) float32 CPU, mask (N, T_max)
    and the token ids (targets tokenised alone, without special tokens; cut to ``max_tokens``)."""
    ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"]
    unk = getattr(tokenizer, "unk_token_id", None)
    n_unk = 0
    for i, row in enumerate(ids):
        if not row:
            raise ValueError(f"target {i} ({targets[i]!r}) tokenises to no tokens; drop it or fix the data")
        n_unk += sum(1 for x in row if unk is not None and x == unk)
    if n_unk:
        log.warning("%d target tokens are the unknown token; the tokenizer does not cover the targets' words", n_unk)
    if max_tokens is not None:
        ids = [row[:max_tokens] for row in ids]
    width = max(len(r) for r in ids)
    padded = torch.zeros(len(ids), width, dtype=torch.long)
    mask = torch.zeros(len(ids), width, dtype=torch.bool)
    for i, row in enumerate(ids):
        padded[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = True
    with torch.no_grad():
        emb = parts.token_embedding(padded.to(parts.device)).detach().float().cpu()
    return emb, mask, ids


def _rows_from_estimate(est, index: dict[str, Tensor], common: dict) -> list[dict]:
    rows = []
    for view, ix in index.items():
        series = {
            SEQUENCE_METRIC: est.mi, f"{SEQUENCE_METRIC}_null": est.null_mean,
            f"{SEQUENCE_METRIC}_null_std": est.null_std, f"{SEQUENCE_METRIC}_corrected": est.corrected,
            "representation_entropy": est.entropy_x,
        }
        for name, values in series.items():
            rows += [{**common, "final_norm": view, "metric": name, "layer": layer, "value": float(v)}
                     for layer, v in enumerate(values[ix])]
        rows.append({**common, "final_norm": view, "metric": "target_entropy", "layer": -1,
                     "value": float(est.entropy_y)})
    return rows


def sequence_information_rows(states: GeneratedStates, ky: Tensor, settings: SequenceInfoSettings | None = None,
                              *, split: str = "all", extra: dict | None = None, progress: bool = False) -> list[dict]:
    """Rows of I(h_l^(t); Y) for every step t and layer l (and the content/stopword split).

    ky: (N, N) target Gram (:func:`~inforidge.info.sequence_gram`), samples in the states' order.
    """
    st = settings or SequenceInfoSettings()
    n = states.hidden.shape[2]
    if ky.shape != (n, n):
        raise ValueError(f"ky has shape {tuple(ky.shape)} but there are {n} generated samples")
    if n < 2:
        raise ValueError(f"{n} sample(s): the information needs at least 2 (use more samples)")
    stack, index = states.views_stacked(st.final_norm_views)
    base = {"n_samples": n, **st.row_settings(), **(extra or {})}
    rows: list[dict] = []
    from tqdm.auto import tqdm

    for t in tqdm(range(states.n_steps), desc="information", disable=not progress):
        kx = gram_matrix(stack[t], "gaussian", sigma=st.sigma)
        est = information_from_grams(kx, ky, alpha=st.alpha, base=st.base, n_permutations=st.n_permutations,
                                     seed=st.seed)
        rows += _rows_from_estimate(est, index, {**base, "step": t, "split": split, "seed": st.seed,
                                                 "token_group": "all"})
    rows += token_group_rows(states, ky, st, stack=stack, index=index, extra=extra)
    return rows


def token_group_draws(states: GeneratedStates, seed: int, min_samples: int = 4) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """{group: (sample indices, steps)} of one draw of the content/stopword split (module doc),
    both groups of equal size; None when a group has fewer than ``min_samples`` samples."""
    masks = states.group_mask()
    eligible = {g: np.nonzero(m.any(1))[0] for g, m in masks.items()}
    size = min(len(e) for e in eligible.values())
    if size < max(min_samples, 2):
        return None
    rng = np.random.default_rng(np.random.SeedSequence([seed, 8]))
    out = {}
    for g in TYPE_GROUPS:
        samples = np.sort(rng.choice(eligible[g], size, replace=False))
        steps = np.array([rng.choice(np.nonzero(masks[g][i])[0]) for i in samples])
        out[g] = (samples, steps)
    return out


def token_group_rows(states: GeneratedStates, ky: Tensor, settings: SequenceInfoSettings, *, stack=None,
                     index=None, extra: dict | None = None) -> list[dict]:
    """Content vs stopword(+punctuation) rows (step -1, split = group), one set per type seed."""
    st = settings
    if stack is None:
        stack, index = states.views_stacked(st.final_norm_views)
    rows: list[dict] = []
    for seed in st.type_seeds:
        draw = token_group_draws(states, seed, st.min_type_samples)
        if draw is None:
            counts = {g: int(m.any(1).sum()) for g, m in states.group_mask().items()}
            log.warning("content/stopword split skipped: samples with a token of each group %s, need >= %d in both",
                        counts, max(st.min_type_samples, 2))
            return []
        for group, (samples, steps) in draw.items():
            s, i = torch.as_tensor(steps), torch.as_tensor(samples)
            x = stack[s, :, i].transpose(0, 1)  # (M, n, D): sample i's state at its drawn step
            kx = gram_matrix(x, "gaussian", sigma=st.sigma)
            est = information_from_grams(kx, ky[i][:, i], alpha=st.alpha, base=st.base,
                                         n_permutations=st.n_permutations, seed=seed)
            common = {"n_samples": len(samples), **st.row_settings(), **(extra or {}), "step": -1, "split": group,
                      "seed": seed, "token_group": group}
            rows += _rows_from_estimate(est, index, common)
    return rows


# ------------------------------------------------------------------------------------------
# End to end: model folder + task -> table, figures, report
# ------------------------------------------------------------------------------------------


def resolve_model_dir(path: str | Path) -> str:
    """A run folder (``runs/<name>`` with ``model/``) resolves to its saved final model."""
    p = Path(path)
    if p.is_dir() and not (p / "config.json").exists() and (p / "model" / "config.json").exists():
        return str(p / "model")
    return str(path)


def load_model_and_tokenizer(path: str | Path, device: str | None = None, dtype: str | None = None):
    """A causal LM and its tokenizer (left padding, pad = eos if missing) from a path or hub name."""
    from transformers import AutoTokenizer

    from .model import load_causal_lm

    where = resolve_model_dir(path)
    kw = {}
    if dtype:
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"dtype must be a torch dtype name such as float32 or bfloat16; got {dtype!r}")
        kw["dtype"] = getattr(torch, dtype)
    try:
        model = load_causal_lm(where, **kw)
    except OSError as e:
        if Path(where).exists():
            raise
        raise FileNotFoundError(
            f"model {path} is not a folder here and could not be loaded from the hub ({e.__class__.__name__}); "
            "train the default with `inforidge demo` (then pass runs/demo) or give a causal LM folder or hub name"
        ) from e
    if device:
        model = model.to(device)
    tokenizer = AutoTokenizer.from_pretrained(where)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


@dataclass
class GenerateInfoOutput:
    out_dir: Path | None
    table: object  # ResultsTable
    states: GeneratedStates
    figures: dict[str, Path]
    report_path: Path | None
    summary: dict


def generate_info(model, tokenizer, records: list[dict], *, out_dir: str | Path | None = None,
                  generation: GenerationSettings | None = None, info: SequenceInfoSettings | None = None,
                  plot_steps: Sequence[int] | None = None, task_name: str = "", model_name: str = "",
                  progress: bool = True, block_path: str | None = None,
                  final_norm_path: str | None = None) -> GenerateInfoOutput:
    """Generate, measure I(h_l^(t); Y) per step and layer, and (with ``out_dir``) write
    results.parquet/csv, generations.jsonl, figures/*.png and report.md.

    records: dicts with ``prompt`` and ``target`` (see :mod:`inforidge.tasks.multitoken`).
    """
    from .results import ResultsTable

    gen = generation or GenerationSettings()
    st = info or SequenceInfoSettings()
    if len(records) < 2:
        raise ValueError(f"{len(records)} record(s): the information needs at least 2 samples (use more --n)")
    t0 = time.time()
    parts = locate_parts(model, block_path=block_path, final_norm_path=final_norm_path)
    states = generate_with_states(parts, tokenizer, [r["prompt"] for r in records], gen, progress=progress)
    emb, mask, target_ids = target_embeddings(parts, tokenizer, [r["target"] for r in records], gen.max_target_tokens)
    ky = sequence_gram(emb, mask, sigma=st.target_sigma)
    splits = sorted({str(r.get("split", "all")) for r in records})
    split = splits[0] if len(splits) == 1 else "all"
    extra = {"max_new_tokens": gen.max_new_tokens, "do_sample": gen.do_sample}
    rows = sequence_information_rows(states, ky, st, split=split, extra=extra, progress=progress)
    table = ResultsTable(None)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for f in ("results.parquet", "results.csv"):  # a fresh table, not appended to an old one
            (out / f).unlink(missing_ok=True)
        table = ResultsTable(out)
    table.append(rows)
    eos = getattr(tokenizer, "eos_token_id", None)
    summary = {
        "model": model_name or getattr(model.config, "_name_or_path", ""), "task": task_name,
        "n_samples": len(records), "split": split, "n_layers": parts.num_layers,
        "n_truncated": states.n_truncated, "prompt_tokens_max": int(states.prompt_lengths.max()),
        "target_tokens_mean": float(mask.sum(1).float().mean()), "target_tokens_max": int(mask.sum(1).max()),
        "with_eos": int((states.generated_ids == eos).any(1).sum()) if eos is not None else 0,
        "token_type_counts": {k: int(sum(row.count(k) for row in states.types))
                              for k in ("content", "stopword", "punctuation", "special")},
        "generation": asdict(gen), "information": asdict(st), "stopwords": STOPWORDS_SOURCE,
        "wall_seconds": round(time.time() - t0, 1),
    }
    figures: dict[str, Path] = {}
    report_path = None
    if out is not None:
        from .generation_report import save_generation_figures, write_generation_report

        with (out / "generations.jsonl").open("w", encoding="utf-8") as f:
            for r, text, ids, kinds, tids in zip(records, states.texts, states.generated_ids.tolist(), states.types,
                                                 target_ids, strict=True):
                f.write(json.dumps({"id": r.get("id"), "generated": text, "generated_ids": ids, "token_types": kinds,
                                    "target": r["target"], "target_tokens": len(tids)}) + "\n")
        figures = save_generation_figures(table.frame, out / "figures", steps=plot_steps)
        summary["wall_seconds"] = round(time.time() - t0, 1)
        report_path = write_generation_report(table.frame, out, summary, figures, states, records)
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return GenerateInfoOutput(out, table, states, figures, report_path, summary)
