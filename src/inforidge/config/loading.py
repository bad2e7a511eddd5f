"""YAML + ``section.field=value`` overrides -> typed, validated config objects."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from inforidge.config.schema import PaperConfig, RunConfig


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls, data: dict | None, where: str = ""):
    """Build dataclass ``cls`` from a nested dict, rejecting unknown keys by name."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
                         f"valid keys under {where or 'top level'}: {', '.join(sorted(known))}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        kwargs[name] = from_dict(tp, value, f"{where}{name}.") if _is_dataclass_type(tp) else value
    return cls(**kwargs)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like section.field=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults when path is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"config file {p} does not exist")
        data = yaml.safe_load(p.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{p} must hold a YAML mapping of sections (task, model, training, tracking)")
    return from_dict(RunConfig, apply_overrides(data, overrides or []))


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


@cache
def field_docs(cls) -> dict[str, str]:
    """The docstring under each field of dataclass ``cls`` (read from its source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def describe_fields(cls=RunConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) for every leaf field, for ``inforidge config``."""
    out = []
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    default = cls()
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _is_dataclass_type(tp):
            out += describe_fields(tp, f"{prefix}{f.name}.")
        else:
            out.append((prefix + f.name, repr(getattr(default, f.name)), docs.get(f.name, "")))
    return out




def paper_config_path() -> Path:
    return Path(str(resources.files("inforidge") / "config" / "presets" / "paper.yaml"))


def load_paper_config(path: str | Path | None = None, overrides: list[str] | None = None
                      ) -> tuple[RunConfig, PaperConfig]:
    """The main run's config and the ``paper:`` section (overrides may name ``paper.*`` too)."""
    p = Path(path) if path is not None else paper_config_path()
    if not p.exists():
        raise FileNotFoundError(f"config file {p} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    data = apply_overrides(data, overrides or [])
    paper = from_dict(PaperConfig, data.pop("paper", None), "paper.")
    return from_dict(RunConfig, data), paper
