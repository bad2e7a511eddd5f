"""Checkpoint sweeps: measure a list of saved model states into ONE tidy table.

Each checkpoint (a ``checkpoint-<N>`` folder of any Trainer run, a run folder of ours, or a
hub revision such as Pythia's ``step3000``) is loaded, hashed, measured with the standard
:class:`~inforidge.measure.Evaluator` and appended to a :class:`~inforidge.results.ResultsTable`
with two extra columns: ``checkpoint`` (the folder's absolute path, or ``name@revision``) and
``weight_hash`` (see :func:`weight_hash`). ``step`` is the checkpoint's training step.

Provenance (hub checkpoints can be wrong: Pythia issues #108, #205, #206): every row carries
the weight hash, and two checkpoints with identical weights are reported with a warning.
A sweep is resumable: checkpoints whose rows are already in the table are skipped.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from .measure import Evaluator, MeasureSettings
from .model import load_causal_lm, locate_parts, validate_parts
from .results import ResultsTable
from .tasks import TaskData

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
    """Step of ``<run>/model``: its own trainer_state.json; else, when the run kept the best
    model (early stopping), the best step recorded in the last checkpoint; else the last step
    in the run's table (a run always measures its last step); else the last checkpoint's
    ``max_steps``."""
    step = _state_step(run / "model")
    if step is not None:
        return step
    state = (_read_state(Path(checkpoints[-1].source)) or {}) if checkpoints else {}
    if state.get("best_global_step") is not None and _loads_best_model(run):
        return int(state["best_global_step"])
    table = run / "results.parquet"
    if table.exists():
        steps = pd.read_parquet(table, columns=["step"])["step"].dropna()
        if len(steps):
            return int(steps.max())
    last = state.get("max_steps") or state.get("global_step")
    return None if last is None else int(last)


def _loads_best_model(run: Path) -> bool:
    cfg = run / "config.yaml"
    if not cfg.exists():
        return False
    import yaml

    data = yaml.safe_load(cfg.read_text()) or {}
    return (data.get("training") or {}).get("early_stopping_patience") is not None


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
                        "checkpoints, no results table); it is left out of the sweep", run)
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


@dataclass
class SweepResult:
    """What a sweep produced; ``warnings`` repeats what was logged (identical weights...)."""

    table: ResultsTable
    checkpoints: list[Checkpoint]
    hashes: dict[str, str] = field(default_factory=dict)
    """checkpoint name -> weight hash (measured now or read from the table)."""
    measured: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Checkpoints whose rows were already in the table (resume)."""
    duplicates: list[list[str]] = field(default_factory=list)
    """Groups of checkpoints with identical weights."""
    warnings: list[str] = field(default_factory=list)


def _load_tokenizer(source, revision=None, trust_remote_code=False):
    from transformers import AutoTokenizer

    kw = {"trust_remote_code": trust_remote_code}
    if revision is not None:
        kw["revision"] = revision
    tok = AutoTokenizer.from_pretrained(str(source), **kw)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _eval_splits(data) -> dict[str, list[dict]]:
    if isinstance(data, TaskData):
        return {"id": data.splits["test_id"], "ood": data.splits["test_ood"]}
    return dict(data)


def _default_device(model_kwargs: dict) -> str | None:
    if model_kwargs.get("device_map") is not None:
        return None
    return "cuda" if torch.cuda.is_available() else None


@contextmanager
def _hf_progress_bars(enabled: bool):
    """transformers' own bars ("Loading weights") off while ``enabled`` is False."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if was and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not enabled:
            hf_logging.enable_progress_bar()


def _measure_all(bar, done, result, evaluator_for, model_kwargs, device, block_path, final_norm_path) -> None:
    """Load, hash and measure each checkpoint of ``bar`` not in ``done``; rows go to ``result.table``."""
    table = result.table
    for c in bar:
        bar.set_postfix_str(f"step {c.step}")
        if c.name in done:
            result.skipped.append(c.name)
            result.hashes[c.name] = done[c.name]
            continue
        ev = evaluator_for(c)
        kw = dict(model_kwargs)
        if c.revision is not None:
            kw["revision"] = c.revision
        model = load_causal_lm(c.source, **kw)
        digest = weight_hash(model)
        if device is not None:
            model.to(device)
        parts = locate_parts(model, block_path=block_path, final_norm_path=final_norm_path)
        validate_parts(parts, ev.tokenizer)
        rows = ev.measure(parts, c.step)
        for r in rows:
            r["checkpoint"] = c.name
            r["weight_hash"] = digest
        table.append(rows)
        result.measured.append(c.name)
        result.hashes[c.name] = digest
        del model, parts
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def sweep(
    checkpoints: Sequence[Checkpoint | str | Path],
    data: TaskData | dict[str, list[dict]],
    settings: MeasureSettings | None = None,
    out_dir: str | Path | None = None,
    *,
    tokenizer=None,
    multi_token_target: str = "error",
    model_kwargs: dict | None = None,
    block_path: str | None = None,
    final_norm_path: str | None = None,
    device: str | None = "auto",
    progress: bool = True,
) -> SweepResult:
    """Measure ``checkpoints`` on the same evaluation subsamples into one table in ``out_dir``.

    Args:
        checkpoints: :class:`Checkpoint` objects, folders, or ``name_or_path@revision`` strings.
        data: a :class:`TaskData` (its ``test_id`` / ``test_ood`` splits) or split -> records.
        settings: estimator settings (the same for every checkpoint).
        out_dir: where ``results.parquet`` / ``results.csv`` go (None: in memory only).
        tokenizer: used for checkpoints without their own tokenizer: a tokenizer object or a
            path / hub name to load one from. A checkpoint folder with tokenizer files uses its own.
        model_kwargs: passed to :func:`~inforidge.model.load_causal_lm` (dtype, device_map, ...).
        device: where to move each model ("auto": CUDA when available; None: leave it).

    Checkpoints already in the table (by the ``checkpoint`` column) are skipped. Two
    checkpoints with identical weight hashes are logged with ``logging.warning`` and listed
    in ``SweepResult.duplicates`` / ``warnings``.
    """
    from tqdm.auto import tqdm

    settings = settings or MeasureSettings()
    model_kwargs = dict(model_kwargs or {})
    model_kwargs.pop("revision", None)
    if device == "auto":
        device = _default_device(model_kwargs)
    splits = _eval_splits(data)
    ckpts = [Checkpoint.parse(c) for c in checkpoints]
    names = [c.name for c in ckpts]
    if len(set(names)) != len(names):
        raise ValueError(f"a checkpoint is listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    table = ResultsTable(out_dir)
    result = SweepResult(table, ckpts)
    done = {}
    f = table.frame
    if not f.empty and "checkpoint" in f:
        done = dict(f.dropna(subset=["checkpoint"]).groupby("checkpoint")["weight_hash"].first())
    steps = [c.step for c in ckpts]
    if len(set(steps)) != len(steps):
        msg = ("two checkpoints share a training step "
               f"{sorted({s for s in steps if steps.count(s) > 1})}; their rows share that step in the table")
        log.warning(msg)
        result.warnings.append(msg)

    trust = bool(model_kwargs.get("trust_remote_code", False))
    shared: list[Evaluator] = []  # the one Evaluator for checkpoints without a tokenizer

    def evaluator_for(c: Checkpoint) -> Evaluator:
        if c.has_tokenizer():
            return Evaluator(_load_tokenizer(c.source, c.revision, trust), splits, settings,
                             multi_token_target=multi_token_target)
        if tokenizer is None:
            raise ValueError(f"{c.name} holds no tokenizer; pass tokenizer= (an object or a folder holding one; "
                             "CLI: --set model.name_or_path=<folder or hub name with the tokenizer>)")
        if not shared:
            tok = _load_tokenizer(tokenizer, None, trust) if isinstance(tokenizer, str | Path) else tokenizer
            shared.append(Evaluator(tok, splits, settings, multi_token_target=multi_token_target))
        return shared[0]

    with _hf_progress_bars(progress):
        bar = tqdm(ckpts, desc="checkpoints", unit="ckpt", disable=not progress)
        _measure_all(bar, done, result, evaluator_for, model_kwargs, device, block_path, final_norm_path)

    by_hash: dict[str, list[str]] = {}
    for name, digest in result.hashes.items():
        by_hash.setdefault(digest, []).append(name)
    for digest, group in by_hash.items():
        if len(group) > 1:
            msg = f"identical weights (hash {digest}) in {len(group)} checkpoints: {', '.join(group)}"
            log.warning(msg)
            result.duplicates.append(group)
            result.warnings.append(msg)
    return result


def checkpoint_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per checkpoint: step, weight hash, and the null-corrected ridge layer per split
    (post view; peak layer of the mean over seeds), from a sweep's table."""
    from .analysis import layer_curves, ridge_of_curves

    rows = []
    for (name, step, digest), g in df.groupby(["checkpoint", "step", "weight_hash"], sort=False):
        row = {"step": int(step), "checkpoint": name, "weight_hash": digest}
        for split in sorted(set(g["split"]) - {"all"}):
            r = ridge_of_curves(layer_curves(g, "predictive_information_corrected", split, "post", int(step)))
            if r:
                row[f"peak {split}"] = r["peak_layer"]
                row[f"ridge {split}"] = "yes" if r["ridge"] else "no"
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["step", "checkpoint"]).reset_index(drop=True)


def append_checkpoint_section(report: Path, df: pd.DataFrame, warnings: Sequence[str] = ()) -> None:
    """Add a "Checkpoints" section (checkpoint, step, weight hash, ridge) to a report."""
    from .markdown import markdown_table

    lines = [
        "",
        "## Checkpoints",
        "weight_hash = sha256 of the loaded weights (state_dict tensors, not the files); "
        "peak / ridge: null-corrected predictive information, post view.",
        "",
        markdown_table(checkpoint_summary(df)),
        "",
    ]
    if warnings:
        lines += ["**Warnings**", "", *[f"- {w}" for w in warnings], ""]
    tmp = report.with_suffix(".md.tmp")
    tmp.write_text(report.read_text() + "\n".join(lines))
    tmp.replace(report)


@dataclass
class SweepOutput:
    out_dir: Path
    result: SweepResult
    report_path: Path
    summary: pd.DataFrame


def _split_sweep_section(data: dict) -> tuple[dict, dict]:
    data = dict(data or {})
    section = data.pop("sweep", None) or {}
    unknown = sorted(set(section) - {"checkpoints", "revisions"})
    if unknown:
        raise ValueError(f"unknown key(s) under sweep: {', '.join(unknown)}; valid: checkpoints, revisions")
    return data, section


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


def sweep_target(
    target: str,
    *,
    checkpoints: Sequence[str] | None = None,
    out: str | Path | None = None,
    config_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    progress: bool = True,
) -> SweepOutput:
    """What ``inforidge sweep`` does: sweep ``target`` (a run folder of ours, a folder of
    Trainer checkpoints, or a hub model name), then write the table, figures and report.

    The evaluation data and measurement settings come from ``config_path`` (a run config YAML
    with the task; it may hold a ``sweep: {checkpoints: [...], revisions: [...]}`` section) or,
    for a run folder of ours, from its ``config.yaml``; ``overrides`` apply on top.
    """
    import yaml

    from .config import RunConfig, apply_overrides, from_dict
    from .plots import save_figures
    from .report import write_report
    from .run import build_task

    folder = Path(target)
    is_dir = folder.is_dir()
    path = Path(config_path) if config_path else (folder / "config.yaml" if is_dir else None)
    if config_path and not path.exists():
        raise ValueError(f"config file {path} does not exist")
    if path is None or not path.exists():
        raise ValueError(
            f"{target} has no config.yaml; pass --config with a YAML whose task section describes "
            "the evaluation data (see `inforidge config`)"
        )
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping of sections")
    data, section = _split_sweep_section(data)
    config: RunConfig = from_dict(RunConfig, apply_overrides(data, list(overrides)))
    hub_name = None if is_dir else target

    items = list(checkpoints or section.get("checkpoints") or [])
    revisions = list(section.get("revisions") or [])
    if revisions:
        name = hub_name or config.model.name_or_path
        if not name:
            raise ValueError("sweep.revisions needs a hub model: give its name as the target or model.name_or_path")
        items += [f"{name}@{r}" for r in revisions]
    if items:
        ckpts = resolve_checkpoints(folder, items, hub_name)
    elif is_dir:
        ckpts = discover_checkpoints(folder)
    else:
        raise ValueError(f"{target} is not a folder; list the revisions to sweep (--checkpoints step0,step1000)")

    tokenizer = None
    if is_dir:
        tokenizer = next((str(p) for p in (folder / "model", folder)
                          if any((p / f).exists() for f in TOKENIZER_FILES)), None)
    tokenizer = tokenizer or config.model.name_or_path or hub_name
    out_dir = Path(out) if out else (folder / "sweep" if is_dir else Path(config.output_dir) / f"sweep-{Path(target).name}")
    model_kwargs = config.model.from_pretrained_kwargs()
    result = sweep(
        ckpts, build_task(config), config.tracking.measure, out_dir, tokenizer=tokenizer,
        multi_token_target=config.task.multi_token_target, model_kwargs=model_kwargs,
        block_path=config.model.block_path, final_norm_path=config.model.final_norm_path, progress=progress,
    )
    df = result.table.frame
    df = df[df["checkpoint"].isin([c.name for c in ckpts])] if "checkpoint" in df else df
    config.name = f"{config.name if config_path is None else Path(target).name} (checkpoint sweep)"
    figures = save_figures(df, out_dir / "figures")
    report_path, _ = write_report(df, out_dir, config, figures)
    append_checkpoint_section(report_path, df, result.warnings)
    return SweepOutput(out_dir, result, report_path, checkpoint_summary(df))
