"""Stage headers of a run (phantom, pre-training, training, evaluation) with the time
spent and the run's ETA, estimated from earlier finished runs of the same settings
under the results root (without one there is no honest estimate, and none is shown)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from ..results import find_runs

__all__ = ["Stages", "duration", "expected_seconds"]

log = logging.getLogger("xhbench")


def expected_seconds(root: Path, task: str, method: str,
                     config_hash: str) -> tuple[float, int] | None:
    """Mean training + evaluation seconds of the finished runs of these settings under
    ``root`` and how many there were; ``None`` without one."""
    if not Path(root).is_dir():
        return None
    times = []
    for run in find_runs(Path(root), task)[0]:
        summary = run.summary
        if summary.get("config_hash") != config_hash or summary.get("method") != method:
            continue
        cost = summary.get("cost") or {}
        times.append(cost.get("train_seconds", 0.0)
                     + cost.get("eval_seconds_per_case", 0.0) * summary["data"]["n_cases"])
    return (sum(times) / len(times), len(times)) if times else None


def duration(seconds: float) -> str:
    """``1h02m`` or ``3m07s``."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Stages:
    """Log ``== stage ==`` headers with the elapsed time and the run's ETA."""

    def __init__(self, expected: tuple[float, int] | None):
        self.expected = expected
        self.started = time.perf_counter()

    def __call__(self, name: str) -> None:
        elapsed = time.perf_counter() - self.started
        if self.expected is None:
            eta = "no ETA (no earlier run of these settings)"
        else:
            eta = f"run ETA {duration(max(self.expected[0] - elapsed, 0.0))}"
        log.info("== %s == elapsed %s, %s", name, duration(elapsed), eta)
