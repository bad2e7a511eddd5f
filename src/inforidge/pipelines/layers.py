"""``inforidge layers``: the Layer-by-Layer suite over models, checkpoints and stress
sweeps, written to a resumable folder (results, figures, report).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from inforidge.config.settings import FigureSettings, LayerSuiteSettings
from inforidge.extract.token_states import StateReader
from inforidge.measure.layer_suite import measure_sequences, probe_and_correlate, sublayer_rows
from inforidge.measure.stress import stress_rows
from inforidge.models.checkpoints import discover_checkpoints, resolve_checkpoints
from inforidge.models.loading import load, tokenizer_folder
from inforidge.pipelines.folders import check_output_folder
from inforidge.pipelines.tracking import check_report_to, write_tensorboard
from inforidge.report.layers import save_layer_figures, write_layers_report
from inforidge.results.table import ResultsTable, atomic_write, has_table
from inforidge.tasks.corpora import BUILTIN, load_labelled_texts, load_texts
from inforidge.tasks.tokenize import check_unknown_tokens

log = logging.getLogger(__name__)


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
        own = tokenizer_folder(folder)
        fallback = str(own) if own else None
    out = []
    for c in ckpts:
        tok = tokenizer or (c.source if c.has_tokenizer() else fallback)
        if tok is None:
            raise ValueError(f"checkpoint {c.name} has no tokenizer files and none was found beside it; pass tokenizer=")
        out.append(_Target(_label(model), c.source, c.step, c.revision, c.name, tok))
    return out


MANIFEST = "layers.json"


def _resume_or_reset(out_dir: Path, manifest: dict) -> bool:
    """True when ``out_dir`` holds a run of the same settings (resume it). A table measured with
    other settings is never replaced: a ValueError names the settings that differ. A folder
    without a table gets the new settings recorded (False)."""
    path = out_dir / MANIFEST
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    if path.exists() and path.read_text() == text:
        return True
    if has_table(out_dir):
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = {}
        new = json.loads(text)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) or ["(no layers.json)"]
        raise ValueError(
            f"{out_dir} holds a layers run with other settings (differing: {', '.join(changed)}); its tables are "
            f"kept. Resume it with the same settings, choose another --out, or delete {out_dir} to start over"
        )
    for stale in ("results.csv", "correlations.csv"):
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
    figure_settings: FigureSettings | None = None,
    progress: bool = True,
    block_path: str | None = None,
    final_norm_path: str | None = None,
    allow_unknown_tokens: bool = False,
    report_to: str = "none",
) -> LayersOutput:
    """What ``inforidge layers`` does: the suite for each model (or each checkpoint of each
    run folder when ``checkpoints`` is "all" or a comma list), optional stress sweeps,
    sub-layer entropies and a downstream probe; then ``<out>/results.parquet|csv``,
    ``<out>/figures/*.png`` (x = depth fraction, models/checkpoints overlaid),
    ``<out>/correlations.csv`` (with a probe) and ``<out>/report.md``. Each model/checkpoint's
    rows are written as soon as it is measured; a second call with the same settings and ``out``
    resumes (skips what is in the table); a table of other settings is an error, never replaced.

    Correlations between each metric and the probe accuracy across layers go to
    correlations.csv (columns model, step, checkpoint, metric, spearman, kendall, dcor...)
    and the report, not to the results table. Sub-layer entropies
    (``inforidge.extract.sublayers``) use the first ``n_samples`` prompts.
    Missing optional modules (sublayer, downstream) give a note, not
    an error. Every model is loaded and validated by :func:`~inforidge.models.loading.load`;
    ``block_path`` / ``final_norm_path`` override the names of a causal LM's parts.

    The share of each text source's tokens (and the probe texts') that a model's tokenizer maps
    to its unknown token is a report note; above 50 % that model is refused (a ValueError, see
    :func:`~inforidge.tasks.tokenize.check_unknown_tokens`) unless ``allow_unknown_tokens``.

    ``report_to="tensorboard"`` also writes ``<out>/tensorboard``: a run per model/checkpoint
    whose x axis is the layer, so each metric/split is one chart with the models overlaid, and
    the depth figures as images.
    """

    s = (settings or LayerSuiteSettings()).validate()
    trackers = check_report_to(report_to)
    if not models:
        raise ValueError("no model given; pass at least one model name or folder")
    if device is None and torch.cuda.is_available():
        device = "cuda"
    out_dir = check_output_folder(out, "the layers output folder (--out)")
    src = load_texts(source, text_field=text_field, unit=unit, max_prompts=s.max_prompts, hf_split=hf_split)
    if len(src.texts) < 2:
        raise ValueError(f"{src.name}: {len(src.texts)} prompt; the suite needs at least 2")
    probe = None
    if probe_data is not None:

        probe = load_labelled_texts(probe_data, text_field=probe_text_field, label_field=probe_label_field)
    out_dir.mkdir(parents=True, exist_ok=True)
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

    try:
        for t in tqdm(todo, desc="models", disable=not progress or len(todo) < 2):
            loaded = load(t.source, kind=kind, tokenizer=t.tokenizer, revision=t.revision, device=device, dtype=dtype,
                          trust_remote_code=trust_remote_code, block_path=block_path, final_norm_path=final_norm_path)
            model, tok = loaded.model, loaded.tokenizer
            # Texts this tokenizer mostly cannot read would measure its unknown token: refused
            # (unless allow_unknown_tokens); the share of each source goes to the report.
            where = f"{t.label}{'' if t.step is None else f' step {t.step}'}"
            sources = {f"text source {src.name}": src.texts, **({f"probe data {Path(probe_data).name}": probe[0]}
                                                                  if probe is not None else {})}
            for what, texts in sources.items():
                unk = check_unknown_tokens(tok, texts, f"{where}: {what}", allow=allow_unknown_tokens)
                name = f"the unknown token {tok.unk_token!r}" if tok.unk_token is not None else "unknown (it has no unknown token)"
                notes.append(f"{where}: {unk.n_unknown} of {unk.n_tokens} tokens ({unk.share:.1%}) of the {what} are {name}")
            reader = StateReader(model, tok, kind=loaded.kind, final_norm=s.final_norm, max_length=s.max_length,
                                 model_name=t.label, parts=loaded.parts)
            context = {"checkpoint": t.checkpoint} if t.checkpoint is not None else {}
            res = measure_sequences(reader, reader.encode(src.texts), s, split=src.name, step=t.step, texts=src.texts,
                                    extra=context, progress=progress)
            # One append per model/checkpoint: a target with rows in the table is complete (resume).
            rows = list(res.rows)
            if res.n_skipped:
                notes.append(f"{t.label}{'' if t.step is None else f' step {t.step}'}: {res.n_skipped} prompt(s) "
                             f"shorter than {s.min_tokens} tokens skipped")
            if repetition or randomness or lengths:

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
    finally:  # what was measured is in results.parquet even when a model fails
        table.compact()
    df = table.frame
    correlations = pd.concat(corr_frames, ignore_index=True) if corr_frames else None
    figs = save_layer_figures(df, out_dir / "figures", figure_settings) if figures else {}
    report = write_layers_report(df, out_dir, figs, settings=s, source=src.name, n_prompts=len(src.texts),
                                 correlations=correlations, notes=notes)
    if trackers and not df.empty:
        write_tensorboard(out_dir / "tensorboard", _layer_runs(df), {f"inforidge/{n}": (0, p) for n, p in figs.items()})
    return LayersOutput(out_dir, df, report, figs, correlations, notes)




def _layer_runs(df: pd.DataFrame) -> dict[str, dict[int, dict[str, float]]]:
    """TensorBoard runs of the plain suite: one per model (``model@step<N>`` per checkpoint),
    step = layer, tag = ``<metric>/<split>`` (mean over seeds)."""
    base = df[df["stress"].isna()] if "stress" in df else df
    base = base[~base["metric"].astype(str).str.startswith("sublayer_")]
    step = base["step"] if "step" in base else pd.Series([None] * len(base), index=base.index)
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for (model, st), g in base.assign(_step=pd.to_numeric(step, errors="coerce")).groupby(
            ["model", "_step"], dropna=False, observed=True):
        name = str(model) if pd.isna(st) else f"{model}@step{int(st)}"
        name = re.sub(r"[^\w.@/-]", "_", name).replace("..", "_").strip("/")
        layers = runs.setdefault(name, {})
        for (layer, metric, split), v in g.groupby(["layer", "metric", "split"], observed=True)["value"].mean().items():
            if pd.notna(v):
                layers.setdefault(int(layer), {})[f"{metric}/{split}"] = float(v)
    return runs
