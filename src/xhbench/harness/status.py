"""A run's ``status.json`` while it runs: running, then failed (with the error and the
path of its traceback in ``log.txt``) or finished (the summary's arrival)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import XhbenchError
from ..results import RunDir

__all__ = ["RunFailed", "recorded"]

log = logging.getLogger("xhbench")


class RunFailed(XhbenchError):
    """A run stopped on an unexpected error; its traceback is in the run's ``log.txt``."""


@contextmanager
def recorded(run: RunDir | None) -> Iterator[None]:
    """Mark ``run`` running for the block; on an error mark it failed and write the
    traceback to its ``log.txt``. An error xhbench explains (:class:`XhbenchError`)
    passes unchanged; any other becomes :class:`RunFailed`, one line naming the log.
    ``run`` is ``None`` on the processes that do not write (torchrun ranks > 0)."""
    if run is None:
        yield
        return
    run.write_status("running")
    try:
        yield
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        logfile = run.file("log.txt")
        with logfile.open("a") as handle:
            handle.write(f"run failed: {error}\n")
            traceback.print_exception(exc, file=handle)
        state = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        run.write_status(state, error=error, traceback=str(logfile))
        if isinstance(exc, XhbenchError) or not isinstance(exc, Exception):
            raise
        raise RunFailed(f"{error} (traceback in {logfile})") from exc
    run.write_status("finished")
