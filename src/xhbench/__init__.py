"""xhbench: a benchmark harness for multi-modal 3D medical imaging.

Public API for plugin authors: :data:`hookimpl`, the base classes
:class:`~xhbench.datasets.Dataset`, :class:`~xhbench.tasks.Task`,
:class:`~xhbench.methods.Method`, and :mod:`xhbench.metrics`.
"""

from __future__ import annotations

from .hookspecs import hookimpl

__all__ = ["__version__", "hookimpl"]

__version__ = "0.1.0"
