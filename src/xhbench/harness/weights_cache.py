"""Caches of trained weights (the runner's pre-trained states, a task's reference
segmenter): one ``<key>.pt`` per training, trained by the first run that needs it.

A run holds the file's lock (``<key>.pt.lock`` beside it, a :class:`filelock.FileLock` as
the phantom cache takes) from looking for the file until it has written it, so two runs
that start together train once: the second waits, then reuses the first one's weights.
The file is written under a unique temporary name and renamed into place, so no reader
ever sees half of one. Under torchrun, rank 0 alone takes the lock and tells the other
ranks what it found.
"""

from __future__ import annotations

import logging
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from . import distributed

__all__ = ["cache_entry", "save_weights"]

log = logging.getLogger("xhbench")


@contextmanager
def cache_entry(path: Path) -> Iterator[bool]:
    """Hold ``path``'s lock while the body reuses or trains and writes it; yields whether
    the file exists (on every rank, as rank 0 found it)."""
    from filelock import FileLock, Timeout

    lock = None
    if distributed.is_main():
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for %s: another run is training it", path)
            lock.acquire()
    try:
        yield distributed.broadcast(path.exists())
    finally:
        if lock is not None:
            lock.release()


def save_weights(path: Path, state: Any) -> None:
    """``torch.save`` ``state`` to a unique temporary file beside ``path``, then rename it
    into place."""
    import torch

    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
