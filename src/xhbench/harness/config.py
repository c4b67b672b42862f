"""Typed configuration: dataclass defaults < profile < config file < ``--set``.

Tasks and methods declare a ``Config`` dataclass and a ``profiles`` mapping
(``smoke`` for CI-sized runs, ``default`` for a meaningful CPU run, ``paper``
for the paper's settings on GPUs). Every override is checked against the
dataclass field types before any work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

from ..errors import ConfigError
from ..options import check_config

__all__ = ["PROFILES", "coerce", "config_hash", "did_you_mean", "parse_assignments", "resolve",
           "to_dict"]

PROFILES = ("smoke", "default", "paper")


def to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as plain JSON-ready values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def config_hash(*parts: Mapping[str, Any]) -> str:
    """A stable sha256 of resolved configs (identifies a run's settings)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Parse ``key=value`` strings from ``--set``."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        parsed[key.strip()] = value.strip()
    return parsed


def load_config_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read a TOML or JSON file with optional ``[task]`` and ``[method]`` tables."""
    path = Path(path)
    try:
        if path.suffix == ".toml":
            import tomllib

            data = tomllib.loads(path.read_text())
        else:
            data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    unknown = set(data) - {"task", "method"}
    if unknown:
        raise ConfigError(f"config file {path}: unknown sections {sorted(unknown)}; "
                          "use [task] and [method]")
    return {section: dict(data.get(section, {})) for section in ("task", "method")}


def resolve(owner: str, config_cls: type, profiles: Mapping[str, Mapping[str, Any]],
            profile: str, *overrides: Mapping[str, Any]) -> Any:
    """Build a config instance for ``owner`` (e.g. ``"method swinunetr"``).

    Raises:
        ConfigError: unknown profile, unknown key, a value of the wrong type or out of the
            range its field declares (:func:`xhbench.options.option`).
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    values: dict[str, Any] = {}
    for layer in (profiles.get(profile, {}), *overrides):
        values.update(layer)
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        named = ", ".join(key + did_you_mean(key, fields) for key in unknown)
        raise ConfigError(f"{owner}: unknown option(s) {named}; known: {', '.join(fields)}")
    typed = {key: coerce(f"{owner} option {key}", value, hints[key]) for key, value in values.items()}
    config = config_cls(**typed)
    check_config(owner, config)
    return config


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` naming the ``known`` name closest to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def coerce(what: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` (often a string from the command line) to ``annotation``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(what, value, arg)
            except ConfigError:
                continue
        raise ConfigError(f"{what}: cannot read {value!r} as {annotation}")
    if origin is Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return choice
        raise ConfigError(f"{what}: {value!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        items = _split_list(value)
        item_type = args[0] if args else str
        if (len(args) == 2 and args[1] is Ellipsis) or len(args) <= 1:
            return tuple(coerce(what, item, item_type) for item in items)
        if len(items) != len(args):
            raise ConfigError(f"{what}: expected {len(args)} values, got {value!r}")
        return tuple(coerce(what, item, arg) for item, arg in zip(items, args))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{what}: expected true or false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{what}: expected {annotation.__name__}, got {value!r}")
        try:
            number = annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{what}: expected {annotation.__name__}, got {value!r}") from None
        if annotation is int and isinstance(value, float) and value != int(value):
            raise ConfigError(f"{what}: expected int, got {value!r}")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{what}: expected a string, got {value!r}")
        return value
    return value


def _split_list(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    text = str(value).strip().strip("[]()")
    return [part.strip() for part in text.split(",") if part.strip()]
