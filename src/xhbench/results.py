"""The results store: one folder per run, written atomically by the harness and read by
the leaderboard (which therefore imports nothing of the harness).

Layout: ``<root>/<task>/<method>/<run_id>/`` holding ``config.json``,
``environment.json``, ``cases.csv`` (long format: ``case, setting, target,
metric, value``; appended case by case), ``skipped.csv`` (cases that could not
be loaded, with ``--skip-bad-cases``), ``cases.done`` (journal of complete
cases, for resuming), ``cost.json``, ``checkpoint.pt``,
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

__all__ = ["CASE_COLUMNS", "RunDir", "default_results_root", "find_runs", "find_unfinished",
           "write_json_atomic"]

CASE_COLUMNS = ("case", "setting", "target", "metric", "value")
SUMMARY = "summary.json"
CASES_DONE = "cases.done"


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

    def record_case(self, case: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append one case's rows, then journal the case as complete (``cases.done``).

        A crash between the two leaves rows of an unjournalled case, which
        :meth:`repair` drops, so a resumed evaluation redoes exactly that case.
        """
        self.append_rows(rows)
        with self.file(CASES_DONE).open("a") as handle:
            handle.write(case + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def completed_cases(self) -> list[str]:
        """Case ids journalled as complete, in evaluation order."""
        path = self.file(CASES_DONE)
        if not path.exists():
            return []
        return [line for line in path.read_text().split("\n") if line]

    def repair(self) -> None:
        """Keep only the rows of journalled cases (after a crash mid-evaluation)."""
        path = self.file("cases.csv")
        if not path.exists():
            return
        done = set(self.completed_cases())
        with path.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle)
                    if row.get("case") in done and None not in row.values()]
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CASE_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

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


def find_unfinished(root: Path, task: str, method: str, config_hash: str,
                    seed: int) -> RunDir | None:
    """The newest unfinished run of these settings and seed, to resume."""
    candidates = []
    for path in (Path(root) / task / method).glob("*"):
        run = RunDir(path)
        if run.finished or not run.file("config.json").exists():
            continue
        config = run.read_json("config.json")
        if config.get("config_hash") == config_hash and config.get("seed") == seed:
            candidates.append(run)
    return max(candidates, key=lambda run: run.path.stat().st_mtime, default=None)


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
