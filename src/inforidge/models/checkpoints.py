"""Checkpoints of a training run: discovery (local ``checkpoint-<N>`` folders, runs,
hub revisions), their training steps, and weight hashes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


STEP_RE = re.compile(r"step(\d+)")


TOKENIZER_FILES = ("tokenizer_config.json", "tokenizer.json")


@dataclass
class Checkpoint:
    """One model state to measure.

    ``name`` is what the ``checkpoint`` column holds (and what resume matches on);
    ``source`` is what ``from_pretrained`` gets (a folder or a hub name); ``revision`` is a
    hub branch, tag or commit (None for folders).
    """

    name: str
    step: int
    source: str
    revision: str | None = None

    @property
    def is_local(self) -> bool:
        return self.revision is None and Path(self.source).is_dir()

    def has_tokenizer(self) -> bool:
        """Whether the checkpoint folder holds its own tokenizer (hub checkpoints: assumed)."""
        if not self.is_local:
            return True
        return any((Path(self.source) / f).exists() for f in TOKENIZER_FILES)

    @classmethod
    def hub(cls, name_or_path: str, revision: str, step: int | None = None) -> Checkpoint:
        """A hub revision; its step is parsed from ``step(\\d+)`` (Pythia's ``step3000``)."""
        if step is None:
            m = STEP_RE.search(revision)
            if m is None:
                raise ValueError(
                    f"cannot tell the training step of revision {revision!r} of {name_or_path}; "
                    "use revisions named step<N> (as Pythia's) or pass Checkpoint.hub(..., step=N)"
                )
            step = int(m.group(1))
        return cls(name=f"{name_or_path}@{revision}", step=int(step), source=name_or_path, revision=revision)

    @classmethod
    def folder(cls, path: str | Path, step: int | None = None) -> Checkpoint:
        """A saved model folder; its step from ``step=``, its ``trainer_state.json``
        (``global_step``), its name (``checkpoint-<N>``, or ``step<N>``), in that order."""
        p = Path(path).resolve()
        if step is None:
            step = _state_step(p)
        if step is None:
            m = CHECKPOINT_RE.match(p.name) or STEP_RE.search(p.name)
            if m is None:
                raise ValueError(
                    f"cannot tell the training step of {p}: no trainer_state.json and the name is "
                    "not checkpoint-<N>; pass Checkpoint.folder(path, step=N)"
                )
            step = int(m.group(1))
        return cls(name=str(p), step=int(step), source=str(p))

    @classmethod
    def parse(cls, spec: str | Path | Checkpoint) -> Checkpoint:
        """An existing folder, or ``name_or_path@revision`` for a hub revision."""
        if isinstance(spec, Checkpoint):
            return spec
        if Path(spec).is_dir():
            return cls.folder(spec)
        s = str(spec)
        if "@" in s:
            name, revision = s.rsplit("@", 1)
            return cls.hub(name, revision)
        raise ValueError(f"checkpoint {s!r} is neither a folder nor name_or_path@revision")


def _read_state(folder: Path) -> dict | None:
    f = folder / "trainer_state.json"
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError):
        return None


def _state_step(folder: Path) -> int | None:
    state = _read_state(folder)
    return None if not state or state.get("global_step") is None else int(state["global_step"])


def _final_model_step(run: Path, checkpoints: list[Checkpoint]) -> int | None:
    """Step of ``<run>/model``, from the Trainer's records and the run's config (never from the
    results table): its own trainer_state.json; else, when the run kept the best model (early
    stopping), the best step recorded in the last checkpoint; else the planned ``max_steps`` (or
    the ``global_step``) recorded there; else ``training.max_steps`` of the run's config.yaml
    when set."""
    step = _state_step(run / "model")
    if step is not None:
        return step
    state = (_read_state(Path(checkpoints[-1].source)) or {}) if checkpoints else {}
    training = _run_training_config(run)
    if state.get("best_global_step") is not None and training.get("early_stopping_patience") is not None:
        return int(state["best_global_step"])
    last = state.get("max_steps") or state.get("global_step")
    if last is not None:
        return int(last)
    max_steps = training.get("max_steps")
    return int(max_steps) if isinstance(max_steps, int) and max_steps > 0 else None


def _run_training_config(run: Path) -> dict:
    """The ``training`` section of the run's config.yaml ({} without one)."""
    cfg = run / "config.yaml"
    if not cfg.exists():
        return {}
    data = yaml.safe_load(cfg.read_text()) or {}
    return data.get("training") or {}


def _scan(folder: Path) -> list[Checkpoint]:
    """The ``checkpoint-<N>`` folders directly under ``folder``, sorted by N."""
    found = []
    for d in folder.iterdir() if folder.is_dir() else []:
        m = CHECKPOINT_RE.match(d.name)
        if m and d.is_dir():
            if not (d / "config.json").exists():
                log.warning("skipping %s: no config.json (an incomplete save?)", d)
                continue
            found.append(Checkpoint.folder(d, int(m.group(1))))
    return sorted(found, key=lambda c: c.step)


def discover_checkpoints(folder: str | Path) -> list[Checkpoint]:
    """The checkpoints under ``folder``, sorted by step.

    - any folder holding ``checkpoint-<N>`` folders (a Trainer ``output_dir``);
    - a run folder of ours: its ``checkpoints/checkpoint-<N>`` and then ``model`` (the final
      weights) when no checkpoint has the same step; the Trainer saves a checkpoint at the
      last step, so ``model`` usually equals the last checkpoint and is left out;
    - a single saved model folder (``config.json`` inside).
    Folders without ``config.json`` (incomplete saves) are skipped with a warning.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder")
    run = root if (root / "checkpoints").is_dir() or (root / "model" / "config.json").exists() else None
    scan = root / "checkpoints" if run is not None and (root / "checkpoints").is_dir() else root
    found = _scan(scan)
    if run is not None and (run / "model" / "config.json").exists():
        step = _final_model_step(run, found)
        if step is None:
            log.warning("%s: the training step of model/ is unknown (no trainer_state.json, no "
                        "checkpoints, no training.max_steps in config.yaml); it is left out of the sweep", run)
        elif step not in {c.step for c in found}:
            found.append(Checkpoint.folder(run / "model", step))
    if not found and (root / "config.json").exists():
        step = None
        if _state_step(root) is None and (root.parent / "config.yaml").exists() and root.name == "model":
            step = _final_model_step(root.parent, _scan(root.parent / "checkpoints"))
        found = [Checkpoint.folder(root, step)]
    if not found:
        raise FileNotFoundError(
            f"no checkpoints in {root}: expected checkpoint-<N> folders, a run folder with "
            "checkpoints/ or model/, or a saved model (config.json)"
        )
    return found


def weight_hash(model: torch.nn.Module, length: int = 16) -> str:
    """sha256 of the model's WEIGHTS (not of its files), as ``length`` hex characters.

    Hashes, for every ``state_dict`` entry in sorted name order: the name, dtype, shape and
    the raw bytes of the tensor. Equal weights give equal hashes whatever the file format or
    sharding; the same checkpoint loaded in another dtype hashes differently.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.device.type == "meta":
            raise ValueError(f"{name} is on the meta device (offloaded?); cannot hash its weights")
        flat = t.to("cpu").contiguous().reshape(-1)
        h.update(flat.view(torch.uint8).numpy() if flat.numel() else b"")
    return h.hexdigest()[:length]


def resolve_checkpoints(target: str | Path, items: Sequence[str], hub_name: str | None = None) -> list[Checkpoint]:
    """Turn CLI / YAML checkpoint names into checkpoints: an existing folder; a folder under
    ``target`` or ``target/checkpoints``; ``name@revision``; or a bare revision of ``hub_name``."""
    base = Path(target)
    out = []
    for item in items:
        item = str(item).strip()
        candidates = [Path(item), base / item, base / "checkpoints" / item] if base.is_dir() else [Path(item)]
        folder = next((p for p in candidates if (p / "config.json").exists()), None)
        if folder is not None:
            out.append(Checkpoint.folder(folder))
        elif "@" in item:
            out.append(Checkpoint.parse(item))
        elif hub_name:
            out.append(Checkpoint.hub(hub_name, item))
        else:
            raise ValueError(f"checkpoint {item!r} is not a model folder (tried {', '.join(map(str, candidates))}) "
                             "nor name_or_path@revision")
    return out
