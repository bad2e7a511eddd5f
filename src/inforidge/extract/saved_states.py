"""Extracted states on disk: one safetensors file per measured step, so any estimator setting
can be recomputed later without the model (``inforidge analyze RUN --from-states``).

A file ``states/step_000120.safetensors`` holds, for every split s of the Evaluator's pool
(N_s samples: the union of its seeds' subsamples, in pool order):

- ``s/hidden`` (L+1, N_s, D) raw residual stream, layer L before the final norm;
- ``s/final_normed`` (N_s, D) layer L after the final norm;
- ``s/labels/<view>`` (N_s, D) the label views;
- ``s/early_exit`` (L+1, N_s) and ``s/target_ids`` (N_s,);
- ``s/label_tokens`` (N_s, T, D) and ``s/label_mask`` (N_s, T) under the ``whole`` policy;

and as metadata the step and ``record_indices`` (split -> seed -> indices into the split's
records), which the reader checks against the Evaluator it measures with: the same records,
the same subsamples. Size: about (L+1) x N_s x D x 4 bytes per split and step (float32).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from inforidge.extract.last_position import LayerStates

FORMAT = "inforidge-states-1"


def states_path(folder: str | Path, step: int) -> Path:
    return Path(folder) / f"step_{int(step):06d}.safetensors"


def save_states(folder: str | Path, step: int, states: dict[str, LayerStates],
                record_indices: dict[str, dict[int, np.ndarray]]) -> Path:
    """Write one step's states (split -> :class:`LayerStates`) atomically; returns the file."""
    tensors: dict[str, torch.Tensor] = {}
    for split, s in states.items():
        tensors[f"{split}/hidden"] = s.hidden
        tensors[f"{split}/final_normed"] = s.final_normed
        tensors[f"{split}/early_exit"] = s.early_exit
        tensors[f"{split}/target_ids"] = s.target_ids
        for view, y in s.labels.items():
            tensors[f"{split}/labels/{view}"] = y
        if s.label_tokens is not None:
            tensors[f"{split}/label_tokens"] = s.label_tokens
            tensors[f"{split}/label_mask"] = s.label_mask
    meta = {
        "format": FORMAT, "step": str(int(step)), "splits": json.dumps(list(states)),
        "record_indices": json.dumps({sp: {str(seed): np.asarray(ix).tolist() for seed, ix in by_seed.items()}
                                      for sp, by_seed in record_indices.items()}),
    }
    path = states_path(folder, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=meta)
    os.replace(tmp, path)  # a reader never sees half a file
    return path


@dataclass
class SavedStates:
    step: int
    states: dict[str, LayerStates]
    record_indices: dict[str, dict[int, list[int]]]


def load_states(path: str | Path) -> SavedStates:
    """Read a file written by :func:`save_states`."""
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an InfoRidge states file (format {meta.get('format')!r}, expected {FORMAT})")
    tensors = load_file(str(path))
    states = {}
    for split in json.loads(meta["splits"]):
        labels = {k.rsplit("/", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{split}/labels/")}
        states[split] = LayerStates(
            hidden=tensors[f"{split}/hidden"], final_normed=tensors[f"{split}/final_normed"], labels=labels,
            early_exit=tensors[f"{split}/early_exit"], target_ids=tensors[f"{split}/target_ids"],
            label_tokens=tensors.get(f"{split}/label_tokens"), label_mask=tensors.get(f"{split}/label_mask"),
        )
    indices = {sp: {int(seed): ix for seed, ix in by_seed.items()}
               for sp, by_seed in json.loads(meta["record_indices"]).items()}
    return SavedStates(int(meta["step"]), states, indices)


def saved_steps(folder: str | Path) -> list[Path]:
    """The states files in ``folder``, by step."""
    return sorted(Path(folder).glob("step_*.safetensors"))
