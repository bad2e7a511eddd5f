"""MkDocs hooks: the command reference from the CLI's own --help texts and the results schema
from ``inforidge.measure.rows.COLUMNS``, written into the pages at build time so neither can
drift from the code. A column without a description here fails the (strict) build."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

log = logging.getLogger("mkdocs.plugins.inforidge")

CLI_MARK = "<!-- cli-reference -->"
COLUMNS_MARK = "<!-- results-columns -->"

COLUMN_MEANING = {
    "step": "Training step of the model state measured (a checkpoint's global step; 0 = before "
            "training). In the multi-token analysis: the decoding step t; -1 for rows of no "
            "decoding step (content-vs-stopword rows).",
    "split": "Evaluation split: `id` (in distribution), `ood` (out of distribution), `all` "
             "(early-exit accuracy over both); in the multi-token rows with step -1, the token "
             "group (content / stopword).",
    "metric": "What `value` is: `predictive_information`, `incremental_gain` (each with "
              "`_null`, `_null_std`, `_corrected`), `early_exit_accuracy`, "
              "`representation_entropy`, `label_entropy`, the analyses' `ridge_*`, "
              "`attention_*`, `residual_scale*`, `kernel_ablation_*`, and the Layer-by-Layer "
              "metrics of `inforidge layers`. With the stochastic estimator, `<metric>_se` "
              "rows hold the standard errors of its estimates.",
    "layer": "0 = embedding output, l = output of block l; -1 for a number about no single "
             "layer (label entropy, ridge statistics).",
    "value": "The number (bits for information and entropies with base 2; a fraction for "
             "accuracies).",
    "seed": "Seed of the subsample of test prompts the row was measured on.",
    "n_samples": "Number of samples (prompts) in that subsample.",
    "alpha": "Rényi order α of the entropies (1 = von Neumann).",
    "kernel": "Kernel of the Gram matrices: gaussian, laplacian, polynomial or linear.",
    "sigma": "Gaussian bandwidth σ (a number, or the value `median` chose).",
    "base": "Log base of the entropies (2 = bits).",
    "final_norm": "Final-norm view: `post` (last layer after the final norm, as Hugging Face "
                  "returns it) or `pre` (raw residual stream at every layer).",
    "label_view": "How the target is embedded: `embedding_output` (the paper's: embedding-layer "
                  "output at the target's position; carries the position for GPT-2) or "
                  "`token_embedding` (the token-embedding row alone).",
    "n_permutations": "Draws of the permutation null behind the `_null` and `_corrected` rows.",
    "null": "Which null: `permutation` (targets shuffled among all samples) or "
            "`permutation_within_length` (shuffled only among prompts of the same length, "
            "when the label embedding carries the prompt length).",
    "estimator": "Which estimator made an information row: `exact` (eigendecomposition of the "
                 "N × N Grams) or `stochastic` (matrix-free Lanczos quadrature + Hutch++, "
                 "`tracking.measure.estimator`); empty on rows that are no information "
                 "estimate (accuracies, dominant dimensions, attention, ...).",
    "flag": "Empty, or a warning about the row: `constant_states` (a layer whose states are "
            "the same for every sample; its MI is 0 by construction).",
}


def _command_reference() -> str:
    import typer.main

    from inforidge.cli import app

    group = typer.main.get_command(app)
    ctx = group.make_context("inforidge", [], resilient_parsing=True)
    lines = ["## Options of every command", ""]
    lines += _options(group, ctx)
    for name, command in group.commands.items():
        sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
        lines += ["", f"## `inforidge {name}`", "", (command.help or "").strip(), ""]
        lines += _options(command, sub)
    return "\n".join(lines) + "\n"


def _options(command, ctx) -> list[str]:
    out = []
    for param in command.params:
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, text = record
        text = " ".join(text.split()).replace("<", "&lt;").replace(">", "&gt;")
        out.append(f"- `{names}`: {text}" if text else f"- `{names}`")
    return out or ["(no options)"]


def _columns_table() -> str:
    from inforidge.measure.rows import COLUMNS

    missing = [c for c in COLUMNS if c not in COLUMN_MEANING]
    if missing:
        log.warning("results schema: no description for the columns %s (docs/hooks.py)", missing)
    stale = [c for c in COLUMN_MEANING if c not in COLUMNS]
    if stale:
        log.warning("results schema: described columns no longer in COLUMNS: %s", stale)
    rows = ["| column | meaning |", "|---|---|"]
    rows += [f"| `{c}` | {COLUMN_MEANING.get(c, '')} |" for c in COLUMNS]
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, _command_reference())
    if COLUMNS_MARK in markdown:
        markdown = markdown.replace(COLUMNS_MARK, _columns_table())
    return markdown
