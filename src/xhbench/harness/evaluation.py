"""Evaluation: each test case is loaded and preprocessed once for all settings."""

from __future__ import annotations

from typing import Sequence

from tqdm.auto import tqdm

from ..datasets.base import Case
from .store import RunDir

__all__ = ["evaluate"]


def evaluate(task, method, cases: Sequence[Case], run: RunDir, *, progress: bool = True) -> None:
    """Predict and score every case under every setting, appending rows case by case."""
    settings = task.settings()
    items = task.evaluation_items(cases)
    for item in tqdm(items, total=len(cases), desc=f"evaluate {method.name}", unit="case",
                     disable=not progress):
        rows = []
        for setting in settings:
            inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
            rows.extend(task.score(method.predict(inputs, setting.available), item, setting))
        run.append_rows(rows)
