"""Multi-token generation: information per decoding step and layer (METHOD §5; paper §6).

Data flow: prompts -> greedy (or seeded sampled) generation of T tokens in left-padded
batches, capturing in the SAME pass every layer's state at the last position of every
decoding step (hooks on the blocks and the final norm that keep only the last position, so the
prompt pass holds no (L+1) x B x T x D of states) -> target Gram from the sequence kernel over the gold targets' token
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
  :mod:`inforidge.tasks.stopwords`. For a group (content; stopwords and punctuation) every sample
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
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from inforidge.config.settings import FINAL_NORM_VIEWS, GenerationSettings
from inforidge.extract.batching import BatchSizer, eval_mode, pad, pad_id
from inforidge.models.forward import register_layer_hooks
from inforidge.models.parts import ModelParts, context_length
from inforidge.tasks.stopwords import TYPE_GROUPS, group_of, token_types

log = logging.getLogger(__name__)


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


@torch.no_grad()
def _generate_batch(parts: ModelParts, ids: Tensor, mask: Tensor, gen: GenerationSettings, pad_token_id: int,
                    seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """One generate() call; returns hidden (T, L+1, B, D), post (T, B, D), new ids (B, T)."""
    from transformers import GenerationConfig

    model = parts.model
    device = parts.device
    ids, mask = ids.to(device), mask.to(device)
    def keep(h: Tensor) -> Tensor:  # the position that predicts the next token
        return h[:, -1].detach().float().cpu()

    config = GenerationConfig(
        max_new_tokens=gen.max_new_tokens, min_new_tokens=0, do_sample=gen.do_sample,
        temperature=gen.temperature if gen.do_sample else None, top_p=gen.top_p if gen.do_sample else None,
        top_k=gen.top_k if gen.do_sample else None, num_beams=1, eos_token_id=None, pad_token_id=pad_token_id,
        return_dict_in_generate=True, use_cache=True,
    )
    store, handles = register_layer_hooks(parts, keep)
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
        for h in handles:
            h.remove()
        model.generation_config = saved
    t = gen.max_new_tokens
    if out.sequences.shape[1] != ids.shape[1] + t:
        raise ValueError(
            f"generate() returned {out.sequences.shape[1] - ids.shape[1]} new tokens, "
            f"expected {t}: a stopping criterion of the model's generation config ended it early"
        )
    counts = [len(v) for v in store["layers"]] + [len(store["pre"])]
    if counts != [t] * (parts.num_layers + 1):
        raise ValueError(
            f"in {t} decoding steps the blocks of {parts.block_path} and the final norm {parts.final_norm_path} "
            f"were called {counts} times (expected {t} each); pass block_path / final_norm_path naming the "
            "list of transformer blocks and the norm applied once before the LM head"
        )
    layers = [torch.stack(v) for v in store["layers"]] + [torch.stack(store["pre"])]  # L+1 x (T, B, D)
    return torch.stack(layers, 1), torch.stack(store["post"]), out.sequences[:, ids.shape[1]:].cpu()


def generate_with_states(parts: ModelParts, tokenizer, prompts: Sequence[str],
                         settings: GenerationSettings | None = None, *, progress: bool = False,
                         batch_size: BatchSizer | None = None) -> GeneratedStates:
    """Generate ``settings.max_new_tokens`` tokens per prompt and capture the states of every
    step and layer at the last position, in the generation pass itself (no re-run per step).

    ``batch_size``: a :class:`~inforidge.extract.batching.BatchSizer` to use (and to read the
    size "auto" found from); default: one made from ``settings.batch_size``.
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
    fill = pad_id(tokenizer, model)
    sizer = batch_size if batch_size is not None else BatchSizer(gen.batch_size)
    bar = tqdm(total=len(rows), desc="generate", unit="prompt", disable=not progress)

    def chunk(i: int, j: int):
        ids, mask = pad(rows[i:j], fill, "left")
        # The sampling seed follows the first prompt's index, so a batch size found by "auto"
        # gives the same draws as that size set by hand.
        out = _generate_batch(parts, ids, mask, gen, fill, gen.seed + i)
        bar.update(j - i)
        return out

    with eval_mode(model), bar:
        chunks = sizer.run(len(rows), chunk, what="generation batch")
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
