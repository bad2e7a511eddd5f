"""Residual scaling coefficients (METHOD §3; paper §5.2, App. C.3).

One learnable scalar alpha_l per block l = 1..L scales that block's residual update:

    h_l = h_(l-1) + alpha_l * (block_l(h_(l-1)) - h_(l-1)),

computed as ``torch.lerp(h_(l-1), block_l(h_(l-1)), alpha_l)``, which is exact at both ends:
alpha = 1 returns the block's output bit for bit and alpha = 0 returns its input (skips it).
All model weights are frozen; only the alphas are trained, on the next-token loss.

Why forward hooks and not a wrapper module swapped into the block list (as repeng's
ControlModel does): transformers 5 records ``output_hidden_states`` with forward hooks on the
block class (``_can_record_outputs``), so a wrapper around the block would leave
``hidden_states[l]`` reporting the UNSCALED block output. A forward hook that runs first
(``prepend=True``) rewrites the block's output before any recorder sees it, so hidden states,
early exit and extraction all see the scaled residual stream. The model's modules are never
replaced; :meth:`ResidualScaling.unwrap` removes the hooks and restores ``requires_grad``.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inforidge.models.forward import position_ids_from_mask
from inforidge.models.parts import ModelParts
from inforidge.models.surgery import ResidualScaling, eval_mode
from inforidge.tasks.tokenize import collator, tokenize_for_next_token

METRIC = "residual_scale"


@dataclass(frozen=True)
class ResidualScaleFit:
    """Result of :func:`fit_residual_scales`.

    alphas: (L,) learned alphas; alphas[l - 1] belongs to block l.
    accuracy_before / accuracy_after: next-token accuracy (final layer, arg-max over the
        vocabulary) on the evaluation records with all alphas 1 / with the learned alphas.
    loss_before / loss_after: mean next-token cross-entropy (nats) on the same records.
    epoch_losses: (epochs,) mean training loss of each epoch.
    """

    alphas: Tensor
    accuracy_before: float
    accuracy_after: float
    loss_before: float
    loss_after: float
    epoch_losses: Tensor
    n_train: int
    n_eval: int
    epochs: int
    lr: float
    weight_decay: float
    seed: int


def _batches(dataset, tokenizer, batch_size: int, order=None):
    collate = collator(tokenizer)
    order = range(len(dataset)) if order is None else order
    order = [int(i) for i in order]
    for i in range(0, len(order), batch_size):
        yield collate([dataset[j] for j in order[i : i + batch_size]])


def _target_loss(model: nn.Module, batch: dict, device) -> tuple[Tensor, Tensor, int]:
    """Summed cross-entropy and correct count over the target tokens of a batch."""
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    labels = batch["labels"].to(device)
    kwargs = {}
    if "position_ids" in inspect.signature(model.forward).parameters:
        # Count real tokens only, as extraction does, so left padding does not shift positions.
        kwargs["position_ids"] = position_ids_from_mask(mask)
    logits = model(input_ids=ids, attention_mask=mask, use_cache=False, **kwargs).logits
    labels = labels.to(logits.device)
    # Position t predicts token t + 1; only the target token carries a label.
    keep = labels[:, 1:] != -100
    pred, gold = logits[:, :-1][keep].float(), labels[:, 1:][keep]
    loss = nn.functional.cross_entropy(pred, gold, reduction="sum")
    return loss, (pred.argmax(-1) == gold).sum(), int(gold.numel())


@torch.no_grad()
def _evaluate(model, dataset, tokenizer, batch_size: int, device) -> tuple[float, float]:
    """(mean loss, accuracy) over every target token of ``dataset``."""
    total, correct, count = 0.0, 0, 0
    for batch in _batches(dataset, tokenizer, batch_size):
        loss, right, n = _target_loss(model, batch, device)
        total, correct, count = total + float(loss), correct + int(right), count + n
    return total / count, correct / count


def fit_residual_scales(
    parts: ModelParts,
    tokenizer,
    records: list[dict],
    *,
    epochs: int = 3,
    lr: float = 1e-2,
    weight_decay: float = 0.01,
    batch_size: int = 32,
    seed: int = 0,
    eval_records: list[dict] | None = None,
    multi_token_target: str = "error",
) -> ResidualScaleFit:
    """Train only the residual scales alpha_1..alpha_L on the next-token loss.

    Args:
        parts: the model's parts; the model is left exactly as it was (hooks removed,
            ``requires_grad`` and train/eval mode restored, weights untouched).
        tokenizer: its tokenizer (padding side respected; positions count real tokens only).
        records: training records with "prompt" and a single-token "target"; the loss is on
            the target token only, as in :func:`inforidge.tasks.tokenize.tokenize_for_next_token`.
        epochs, lr, weight_decay, batch_size: AdamW on the alphas (paper: lr 1e-4..1e-2,
            3-10 epochs, weight decay 0.01). Weight decay pulls the alphas towards 0.
        seed: seeds the shuffling of the records each epoch.
        eval_records: records for the accuracy and loss before/after (default: ``records``).
        multi_token_target: policy for targets longer than one token, as in
            :func:`inforidge.tasks.tokenize.tokenize_for_next_token`.

    The model runs in eval mode throughout (dropout off), so the loss is a deterministic
    function of the alphas.
    """
    if not records:
        raise ValueError("records is empty; fit_residual_scales needs training records")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}")
    model, device = parts.model, parts.device
    train = tokenize_for_next_token(records, tokenizer, multi_token_target)
    evaluation = (train if eval_records is None
                  else tokenize_for_next_token(eval_records, tokenizer, multi_token_target))
    generator = torch.Generator().manual_seed(int(seed))
    epoch_losses = []
    with eval_mode(model):
        scaling = ResidualScaling(parts)
        try:
            loss_before, acc_before = _evaluate(model, evaluation, tokenizer, batch_size, device)
            optimizer = torch.optim.AdamW(scaling.parameters(), lr=lr, weight_decay=weight_decay)
            for _ in range(epochs):
                total, count = 0.0, 0
                order = torch.randperm(len(train), generator=generator)
                for batch in _batches(train, tokenizer, batch_size, order):
                    loss, _, n = _target_loss(model, batch, device)
                    optimizer.zero_grad(set_to_none=True)
                    (loss / n).backward()
                    optimizer.step()
                    total, count = total + float(loss.detach()), count + n
                epoch_losses.append(total / count)
            loss_after, acc_after = _evaluate(model, evaluation, tokenizer, batch_size, device)
            alphas = scaling.alphas.detach().cpu().clone()
        finally:
            scaling.unwrap()
    if not all(math.isfinite(v) for v in epoch_losses):
        raise FloatingPointError(f"the training loss became non-finite ({epoch_losses}); lower lr")
    return ResidualScaleFit(
        alphas=alphas, accuracy_before=acc_before, accuracy_after=acc_after,
        loss_before=loss_before, loss_after=loss_after,
        epoch_losses=torch.tensor(epoch_losses, dtype=torch.float64),
        n_train=len(records), n_eval=len(evaluation), epochs=epochs, lr=float(lr),
        weight_decay=float(weight_decay), seed=int(seed),
    )


def residual_scale_rows(fit: ResidualScaleFit, *, split: str, step: int = 0) -> list[dict]:
    """Tidy rows (see :mod:`inforidge.results.table`) for one fit on one split ("id" or "ood").

    metric "residual_scale": layer 1..L, value alpha_l. metric "residual_scale_accuracy_before"
    / "_after": layer L, the final-layer accuracy. ``step`` is the checkpoint the model came
    from; ``seed`` is the fit's shuffling seed and ``n_samples`` the training records. The
    Renyi settings (alpha, kernel, sigma, base, label_view, n_permutations) do not apply and
    are None; ``final_norm`` is "post" because the fit runs through the final norm and head.
    Extra columns record the fit (scale_epochs, scale_lr, scale_weight_decay).
    """
    n_layers = int(fit.alphas.shape[0])
    common = {
        "step": int(step), "split": split, "seed": fit.seed, "n_samples": fit.n_train,
        "alpha": None, "kernel": None, "sigma": None, "base": None, "final_norm": "post",
        "label_view": None, "n_permutations": None,
        "scale_epochs": fit.epochs, "scale_lr": fit.lr, "scale_weight_decay": fit.weight_decay,
    }
    rows = [{**common, "metric": METRIC, "layer": layer, "value": float(a)}
            for layer, a in enumerate(fit.alphas.tolist(), start=1)]
    rows += [
        {**common, "metric": f"{METRIC}_accuracy_before", "layer": n_layers, "value": fit.accuracy_before,
         "n_samples": fit.n_eval},
        {**common, "metric": f"{METRIC}_accuracy_after", "layer": n_layers, "value": fit.accuracy_after,
         "n_samples": fit.n_eval},
    ]
    return rows
