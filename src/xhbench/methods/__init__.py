"""Methods: the paper's method and its baselines, as plugins."""

from .base import Method

__all__ = ["Method"]
