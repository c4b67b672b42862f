"""``history.csv`` in the run folder: one row per optimisation step.

Columns ``stage, step, lr, loss`` and one per loss term (the union over the stages,
empty where a stage has no such term). Rows are appended and flushed as the steps
run; a resumed stage first drops its rows from the resumed step on (and any rows
after them), so a run stopped and resumed holds each step once.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["HISTORY", "FIXED_COLUMNS", "History"]

HISTORY = "history.csv"
FIXED_COLUMNS = ("stage", "step", "lr", "loss")


class History:
    """The loss/LR history of a run folder; ``path`` None writes nothing."""

    def __init__(self, path: Path | None):
        self.path = None if path is None else Path(path)
        self.columns: list[str] = list(FIXED_COLUMNS)
        if self.path is not None and self.path.exists():
            with self.path.open(newline="") as handle:
                self.columns = next(csv.reader(handle), None) or list(FIXED_COLUMNS)

    def restart(self, stage: str, start: int) -> None:
        """Drop the rows of ``stage`` from step ``start`` on, and every row after them."""
        if self.path is None or not self.path.exists():
            return
        rows = self._rows()
        for index, row in enumerate(rows):
            if row["stage"] == stage and int(row["step"]) >= start:
                self._write(rows[:index])
                return

    def append(self, stage: str, step: int, lr: float, loss: float,
               terms: Mapping[str, float]) -> None:
        if self.path is None:
            return
        new = [name for name in terms if name not in self.columns]
        if new or not self.path.exists():
            rows = self._rows()
            self.columns += new
            self._write(rows)
        row = {"stage": stage, "step": step, "lr": repr(float(lr)),
               "loss": repr(float(loss)), **{name: repr(float(value))
                                             for name, value in terms.items()}}
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, self.columns).writerow(row)

    def _rows(self) -> list[dict[str, str]]:
        if self.path is None or not self.path.exists():
            return []
        with self.path.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def _write(self, rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

