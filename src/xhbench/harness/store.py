"""The results store: one folder per run, written atomically.

Layout: ``<root>/<task>/<method>/<run_id>/`` holding ``config.json``,
``environment.json``, ``cases.csv`` (long format: ``case, setting, target,
metric, value``; appended case by case), ``skipped.csv`` (cases that could not
be loaded, with ``--skip-bad-cases``), ``cost.json``, ``checkpoint.pt``,
``log.txt`` and, last, ``summary.json``. A run is finished only when its
summary exists; readers ignore unfinished runs.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["CASE_COLUMNS", "RunDir", "default_results_root", "find_runs", "write_json_atomic"]

CASE_COLUMNS = ("case", "setting", "target", "metric", "value")
SUMMARY = "summary.json"


def default_results_root() -> Path:
    """``$XHBENCH_RESULTS`` or ``./xhbench-results``."""
    return Path(os.environ.get("XHBENCH_RESULTS", "xhbench-results"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True, default=str)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunDir:
    """One run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, root: Path, task: str, method: str, seed: int, config_hash: str) -> "RunDir":
        """Make a new, uniquely named run folder."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        parent = Path(root) / task / method
        parent.mkdir(parents=True, exist_ok=True)
        prefix = f"{stamp}-seed{seed}-{config_hash[:8]}-"
        return cls(tempfile.mkdtemp(prefix=prefix, dir=parent))

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, data: Any) -> None:
        write_json_atomic(self.file(name), data)

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def append_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append per-case metric rows to ``cases.csv`` and flush them to disk."""
        path = self.file("cases.csv")
        new = not path.exists()
        with path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CASE_COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows({key: row[key] for key in CASE_COLUMNS} for row in rows)
            handle.flush()
            os.fsync(handle.fileno())

    def record_skipped(self, case: str | None, path: object, reason: str) -> None:
        """Append a case that could not be used to ``skipped.csv``."""
        target = self.file("skipped.csv")
        new = not target.exists()
        with target.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(("case", "file", "reason"))
            writer.writerow((case or "", path or "", reason))

    def cases(self):
        """The per-case table as a pandas DataFrame."""
        import pandas as pd

        return pd.read_csv(self.file("cases.csv"), dtype={"case": str, "setting": str})

    @property
    def finished(self) -> bool:
        return self.file(SUMMARY).exists()

    def finish(self, summary: Mapping[str, Any]) -> None:
        """Write the summary last: from now on the run counts as finished."""
        self.write_json(SUMMARY, dict(summary))

    @property
    def summary(self) -> dict[str, Any]:
        return self.read_json(SUMMARY)


def find_runs(root: Path, task: str | None = None) -> tuple[list[RunDir], list[RunDir]]:
    """Finished and unfinished run folders under ``root`` (of one task, or all)."""
    root = Path(root)
    pattern = f"{task}/*/*" if task else "*/*/*"
    finished, unfinished = [], []
    for path in sorted(p for p in root.glob(pattern) if p.is_dir()):
        if not (path / "config.json").exists():
            continue
        run = RunDir(path)
        (finished if run.finished else unfinished).append(run)
    return finished, unfinished
