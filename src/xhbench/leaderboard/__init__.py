"""Leaderboards from the results store, and regression checks between them.

Reads finished run folders only (:mod:`xhbench.results`); never imports torch.
"""

from __future__ import annotations

from .aggregate import Leaderboard, aggregate, build_leaderboard
from .compare import (DEFAULT_TOLERANCE, Change, Comparison, compare_leaderboards,
                      format_comparison, load_leaderboard)
from .render import FORMATS, render, skipped_lines, to_document

__all__ = ["DEFAULT_TOLERANCE", "FORMATS", "Change", "Comparison", "Leaderboard", "aggregate",
           "build_leaderboard", "compare_leaderboards", "format_comparison", "load_leaderboard",
           "render", "skipped_lines", "to_document"]
