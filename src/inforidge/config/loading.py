"""YAML + ``section.field=value`` overrides -> typed, validated config objects."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from inforidge.config.schema import PaperConfig, RunConfig


class ConfigError(ValueError):
    """A config value of the wrong type or out of range, named by its dotted key."""


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 floats: ``1e-3`` is a float (PyYAML's 1.1 rules read it as a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str, where: str = "YAML"):
    """``yaml.safe_load`` with YAML 1.2 floats (``1e-3`` -> 0.001); malformed YAML is a
    ``ConfigError`` naming ``where`` and the line."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{where} is not valid YAML{at}: {problem}; fix the syntax "
                          "(quote values that hold ':' '[' or '{')") from None


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


# Lax pydantic validation ('3' -> 3, '1e-3' -> 0.001, 3.0 -> 3; 3.5 for an int, 'maybe' for a bool
# fail), numbers accepted where a string is expected (``--set name=2024``).
_PYDANTIC_CONFIG = {"coerce_numbers_to_str": True}


def _prepare(cls) -> None:
    if "__pydantic_config__" not in cls.__dict__:
        cls.__pydantic_config__ = _PYDANTIC_CONFIG
    for tp in typing.get_type_hints(cls).values():
        if _is_dataclass_type(tp):
            _prepare(tp)


@cache
def _adapter(cls) -> TypeAdapter:
    _prepare(cls)
    return TypeAdapter(cls)


def _check_keys(cls, data, where: str) -> None:
    """Reject unknown keys by name (pydantic would drop them silently)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or 'the config'} must be a mapping of fields; got {data!r}")
    hints = typing.get_type_hints(cls)
    known = sorted(f.name for f in dataclasses.fields(cls))
    unknown = sorted(str(k) for k in set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; "
                          f"valid keys under {where.rstrip('.') or 'top level'}: {', '.join(known)}")
    for name, value in data.items():
        tp = hints[name]
        if _is_dataclass_type(tp) and value is not None:
            _check_keys(tp, value, f"{where}{name}.")


def _field_at(cls, loc: tuple) -> tuple[list[str], str | None]:
    """The dataclass-field prefix of a pydantic error location and that field's declared type."""
    names, expected = [], None
    for item in loc:
        if not (_is_dataclass_type(cls) and isinstance(item, str)):
            break
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if item not in fields:
            break
        names.append(item)
        expected = str(fields[item].type)
        cls = typing.get_type_hints(cls)[item]
    if _is_dataclass_type(cls):
        expected = None  # a whole section (its __post_init__ check failed)
    return names, expected


def _config_error(cls, err: ValidationError, where: str) -> ConfigError:
    lines, seen = [], set()
    for e in err.errors(include_url=False):
        names, expected = _field_at(cls, tuple(e["loc"]))
        key = where + ".".join(names)
        if e["type"] == "value_error" and expected is None:  # a __post_init__ check: its own message
            msg = str(e.get("ctx", {}).get("error", e["msg"]))
            section = key.rstrip(".")
            if section and not msg.startswith(section.split(".")[-1]) and not msg.startswith(section):
                msg = f"{section}: {msg}"
            if msg not in seen:
                seen.add(msg)
                lines.append(msg)
            continue
        if key in seen:  # one line per key (a union reports each of its members)
            continue
        seen.add(key)
        extra = "".join(f"[{i}]" for i in e["loc"][len(names):] if isinstance(i, int))
        lines.append(f"{key}{extra}: expected {expected}, got {e['input']!r} ({e['msg']})")
    return ConfigError("invalid config: " + "; ".join(lines) if len(lines) > 1 else lines[0])


def from_dict(cls, data: dict | None, where: str = ""):
    """Build dataclass ``cls`` from a nested dict: unknown keys rejected by name, every value checked
    against its annotation (lax numbers: '1e-3' -> 0.001, '3' -> 3), then the classes' own checks.
    Raises ``ConfigError`` (a ValueError) naming the dotted key, the value and the expected type."""
    data = dict(data or {})
    _check_keys(cls, data, where)
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as e:
        raise _config_error(cls, e, where) from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a nested dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.field=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = parse_yaml(raw, f"the value of --set {item!r}") if raw.strip() else None
    return data


def read_yaml(path: str | Path | None, what: str = "sections") -> dict:
    """A YAML mapping from ``path`` ({} when None)."""
    if path is None:
        return {}
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"config file {p} does not exist")
    data = parse_yaml(p.read_text(), f"config file {p}") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a YAML mapping of {what}")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults when path is None) and apply overrides."""
    data: dict[str, Any] = read_yaml(path, "sections (task, model, training, tracking)")
    return from_dict(RunConfig, apply_overrides(data, overrides or []))


def _merge(base: dict, top: dict) -> dict:
    """``top`` over ``base``, section by section."""
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_command_config(cls, flags: dict | None = None, path: str | Path | None = None,
                        overrides: list[str] | None = None):
    """A command's config: its flags, then a YAML file, then ``--set`` overrides, validated as
    :func:`from_dict` does (errors name the dotted key) before the command touches anything."""
    data = _merge(flags or {}, read_yaml(path))
    return from_dict(cls, apply_overrides(data, overrides or []))


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
    data = apply_overrides(read_yaml(p), overrides or [])
    paper = from_dict(PaperConfig, data.pop("paper", None), "paper.")
    return from_dict(RunConfig, data), paper
