"""A static HTML report of a results folder (:func:`build_site`), read-only on the runs."""

from __future__ import annotations

from .site import build_site

__all__ = ["build_site"]
