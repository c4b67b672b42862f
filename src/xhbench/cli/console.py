"""The harness's log messages on stderr while a command runs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["console_log"]


@contextmanager
def console_log(level: int = logging.NOTSET) -> Iterator[None]:
    """Show the ``xhbench`` logger's messages of at least ``level`` on stderr, bare."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    logger = logging.getLogger("xhbench")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
