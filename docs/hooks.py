"""MkDocs hooks: the command reference from the CLI's own --help texts and the results schema
from ``inforidge.measure.rows.COLUMNS``, written into the pages at build time so neither can
drift from the code (the column table: ``inforidge.results.table.schema_markdown``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


CLI_MARK = "<!-- cli-reference -->"
COLUMNS_MARK = "<!-- results-columns -->"



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
    from inforidge.results.table import schema_markdown

    return schema_markdown()


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, _command_reference())
    if COLUMNS_MARK in markdown:
        markdown = markdown.replace(COLUMNS_MARK, _columns_table())
    return markdown
