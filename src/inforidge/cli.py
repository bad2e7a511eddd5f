"""Command line: ``inforidge demo | paper | run | sweep | analyze | config | env``."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="InfoRidge: how task information flows through the layers of a transformer LM.")

SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="Override a config field: section.field=value (repeatable).")]


def _run(config_path: Path | None, overrides: list[str] | None, quiet: bool) -> None:
    from .config import load_config
    from .run import run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_path, overrides or [])
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
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


def demo_config_path() -> Path:
    return Path(str(resources.files("inforidge") / "configs" / "demo.yaml"))


@app.command()
def demo(overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars.")) -> None:
    """Train the default GPT-2 on the synthetic task with tracking; write table, figures, report."""
    _run(demo_config_path(), overrides, quiet)


@app.command()
def paper(config: Path | None = typer.Option(None, help="YAML with the main run and a paper: section "
                                             "(default: the bundled configs/paper.yaml)."),
          overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars.")) -> None:
    """The synthetic reproduction: main run (12 layers, every analysis), depth-threshold runs and an
    overfitting run under runs/paper/, then one combined report (resumable; takes hours on a CPU)."""
    from .paper import load_paper_config, run_paper

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        base, extra = load_paper_config(config, overrides or [])
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
    out = run_paper(base, extra, progress=not quiet)
    typer.echo(f"\nreport:  {out.report_path}")
    for name, d in out.runs.items():
        typer.echo(f"{name:9s} {d / 'report.md'}")


@app.command("run")
def run_cmd(config: Path = typer.Argument(..., help="YAML config (see `inforidge config`)."),
            overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars.")) -> None:
    """Run (or resume) the job a YAML config describes."""
    _run(config, overrides, quiet)


@app.command("config")
def config_cmd(show_defaults: bool = typer.Option(False, "--yaml", help="Print the demo config as YAML instead.")) -> None:
    """List every config field with its default and meaning."""
    from .config import describe_fields

    if show_defaults:
        typer.echo(demo_config_path().read_text())
        return
    for key, default, doc in describe_fields():
        typer.echo(f"{key:36s} {default:14s} {doc}")


@app.command()
def env() -> None:
    """Print versions and hardware facts (paste them into bug reports)."""
    from .envinfo import environment

    typer.echo(json.dumps(environment(), indent=2))


@app.command("sweep")
def sweep_cmd(
    target: str = typer.Argument(..., help="A run folder, a folder of checkpoint-<N> folders, or a hub model name."),
    checkpoints: str | None = typer.Option(None, help="Comma-separated checkpoints: folder names, paths, "
                                           "name@revision, or revisions of a hub target (step0,step1000)."),
    out: Path | None = typer.Option(None, help="Output folder (default: <run>/sweep)."),
    config: Path | None = typer.Option(None, help="YAML with the task (default: the run's config.yaml)."),
    overrides: SetOpt = None, quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Measure a list of checkpoints into one table (step + weight hash per row); resumable."""
    from .sweep import sweep_target

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    items = [c for c in (checkpoints or "").split(",") if c.strip()]
    try:
        res = sweep_target(target, checkpoints=items, out=out, config_path=config,
                           overrides=overrides or [], progress=not quiet)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
    typer.echo(f"\nreport:  {res.report_path}")
    typer.echo(f"table:   {res.out_dir / 'results.parquet'}")
    typer.echo(res.summary.to_string(index=False))
    for w in res.result.warnings:
        typer.echo(f"warning: {w}")


@app.command("analyze")
def analyze_cmd(
    run_dir: Path = typer.Argument(..., help="A finished run folder (config.yaml, model/, results.parquet)."),
    what: str = typer.Option("ridge,attention,scaling", help="Comma-separated analyses: ridge, attention, scaling, kernels."),
) -> None:
    """Ridge statistics, attention to signal tokens, residual scaling and the kernel ablation on a saved run
    (no retraining)."""
    from .analyses import analyze_run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stages = [w.strip() for w in what.split(",") if w.strip()]
    try:
        outcome, report = analyze_run(run_dir, stages)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from e
    for m in outcome.messages:
        typer.echo(m)
    typer.echo(f"{outcome.rows} rows written (replacing these analyses' earlier rows); report: {report}")


if __name__ == "__main__":
    app()
