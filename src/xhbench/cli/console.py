"""The harness's log messages on stderr while a command runs, written through
``tqdm.write`` so that they print above a progress bar instead of through it."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["console_log"]


class _TqdmHandler(logging.StreamHandler):
    """A stream handler that writes each record with ``tqdm.write`` (bars stay whole)."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging's own contract
            self.handleError(record)


@contextmanager
def console_log(level: int = logging.NOTSET) -> Iterator[None]:
    """Show the ``xhbench`` logger's messages of at least ``level`` on stderr, bare."""
    handler = _TqdmHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(level)
    logger = logging.getLogger("xhbench")
    logger.addHandler(handler)
    previous = logger.level
    if previous == logging.NOTSET or previous > logging.INFO:  # the run's stage headers
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
