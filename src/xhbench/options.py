"""Ranges of config options, declared once on the field and checked before any work.

A task's or method's ``Config`` dataclass declares a field's range with :func:`option`::

    lr: float = option(1e-3, gt=0)
    sw_overlap: float = option(0.5, ge=0, lt=1)
    feature_size: int = option(12, ge=12, multiple_of=12)

A subclass that only changes the default (``lr: float = 3e-3``) keeps the range its base
declared: :func:`check_config` takes each field's range from the nearest class that
declares one. Tuple values (``roi``) are checked item by item; ``None`` is never checked.
A check across fields goes in the Config's ``validate()`` method, which :func:`check_config`
calls after the ranges. It raises :class:`~xhbench.errors.ConfigError` naming the options
and their values (``"options grid_low=7 and grid_high=6: grid_low must be < grid_high"``);
:func:`check_config` puts the owner in front (``"method threshold options ..."``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

__all__ = ["Range", "check_config", "option", "range_of"]


@dataclass(frozen=True)
class Range:
    """Bounds and a step that a number (or each number of a tuple) must respect."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    multiple_of: int | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or ``None``."""
        if value is None:
            return None
        if isinstance(value, (tuple, list)):
            return next(filter(None, map(self.problem, value)), None)
        if self.gt is not None and not value > self.gt:
            return f"must be > {self.gt:g}"
        if self.ge is not None and not value >= self.ge:
            return f"must be >= {self.ge:g}"
        if self.lt is not None and not value < self.lt:
            return f"must be < {self.lt:g}"
        if self.le is not None and not value <= self.le:
            return f"must be <= {self.le:g}"
        if self.multiple_of is not None and value % self.multiple_of:
            return f"must be a multiple of {self.multiple_of}"
        return None

    def __str__(self) -> str:
        parts = [f"{op} {bound:g}" for op, bound in
                 ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le))
                 if bound is not None]
        if self.multiple_of is not None:
            parts.append(f"multiple of {self.multiple_of}")
        return ", ".join(parts)


def option(default: Any = dataclasses.MISSING, *, gt: float | None = None,
           ge: float | None = None, lt: float | None = None, le: float | None = None,
           multiple_of: int | None = None) -> Any:
    """A dataclass field with ``default`` and a :class:`Range` in its metadata."""
    valid = Range(gt=gt, ge=ge, lt=lt, le=le, multiple_of=multiple_of)
    return dataclasses.field(default=default, metadata={"range": valid})


def range_of(config_cls: type, name: str) -> Range | None:
    """The range of field ``name``: from the nearest class in the MRO that declares one."""
    for cls in config_cls.__mro__:
        declared = getattr(cls, "__dataclass_fields__", {}).get(name)
        if declared is not None and "range" in declared.metadata:
            return declared.metadata["range"]
    return None


def check_config(owner: str, config: Any) -> None:
    """Raise :class:`ConfigError` naming the first option of ``config`` out of its range,
    or the options its ``validate()`` finds at odds, after ``owner``, whose config it is
    (``"method swinunetr"``).
    """
    for field in dataclasses.fields(config):
        valid = range_of(type(config), field.name)
        value = getattr(config, field.name)
        problem = valid.problem(value) if valid is not None else None
        if problem:
            raise ConfigError(f"{owner} option {field.name}={_show(value)}: {problem}")
    validate = getattr(config, "validate", None)
    if callable(validate):  # a Config's check across fields
        try:
            validate()
        except ConfigError as exc:
            raise ConfigError(f"{owner} {exc}") from None


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)
