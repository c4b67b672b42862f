"""The results store: one folder per run, written atomically by the harness and read by
the leaderboard (which therefore imports nothing of the harness).

Layout: ``<root>/<task>/<method>/<run_id>/`` holding ``config.json``,
``environment.json``, ``cases.csv`` (long format: ``case, setting, target,
metric, value``; appended case by case), ``skipped.csv`` (cases that could not
be loaded, with ``--skip-bad-cases``), ``cases.done`` (journal of complete
cases, for resuming), ``cost.json``, ``checkpoint.pt``,
``log.txt``, ``status.json`` (running, failed with the error and where its traceback
is, or finished) and, last, ``summary.json``. A run is finished only when its summary
exists; readers ignore unfinished runs.

Files and folders are created with the default modes, so they follow the umask (a team's
shared results folder stays readable to the team).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["CASE_COLUMNS", "STATES", "RunDir", "default_results_root", "find_runs",
           "find_unfinished", "make_unique_dir", "write_json_atomic"]

CASE_COLUMNS = ("case", "setting", "target", "metric", "value")
SUMMARY = "summary.json"
STATUS = "status.json"
CASES_DONE = "cases.done"
#: What ``RunDir.state`` can say: ``interrupted`` is a run whose ``status.json`` says
#: running but whose process (on this host) is gone; ``unknown`` a folder without status.
STATES = ("running", "failed", "interrupted", "finished", "unknown")


def default_results_root() -> Path:
    """``$XHBENCH_RESULTS`` or ``./xhbench-results``."""
    return Path(os.environ.get("XHBENCH_RESULTS", "xhbench-results"))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "x") as handle:  # mode 0666 less the umask, unlike mkstemp's 0600
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
        return cls(make_unique_dir(parent, f"{stamp}-seed{seed}-{config_hash[:8]}-"))

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

    def write_status(self, state: str, **details: Any) -> None:
        """Record the run's ``state`` (running, failed, finished) in ``status.json``,
        with the host and process that wrote it and ``details`` (e.g. the error)."""
        self.write_json(STATUS, {"state": state, "host": socket.gethostname(),
                                 "pid": os.getpid(), **details,
                                 "updated_at": datetime.now(timezone.utc)
                                 .isoformat(timespec="seconds")})

    @property
    def status(self) -> dict[str, Any]:
        """``status.json`` with ``state`` as one of :data:`STATES`."""
        try:
            status = self.read_json(STATUS)
        except (OSError, ValueError):
            status = {}
        status.setdefault("state", "unknown")
        if self.finished:
            status["state"] = "finished"
        elif status.get("state") == "running" and not _alive(status):
            status["state"] = "interrupted"
        return status

    @property
    def state(self) -> str:
        return self.status["state"]


def _alive(status: Mapping[str, Any]) -> bool:
    """Whether the process that wrote ``status`` may still run (always, on another host)."""
    if status.get("host") != socket.gethostname() or "pid" not in status:
        return True
    try:
        os.kill(int(status["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_unique_dir(parent: Path, prefix: str) -> Path:
    """Create and return a new folder ``parent/<prefix><random>`` with the default mode
    (0777 less the umask; ``tempfile.mkdtemp`` would make it 0700)."""
    while True:
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path


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
