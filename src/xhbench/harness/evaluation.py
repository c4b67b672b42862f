"""Evaluation: each test case is loaded and preprocessed once for all settings."""

from __future__ import annotations

from typing import Callable, Sequence

from tqdm.auto import tqdm

from ..datasets.base import Case
from ..errors import DataError
from .store import RunDir

__all__ = ["evaluate"]


def evaluate(task, method, cases: Sequence[Case], run: RunDir, *, progress: bool = True,
             on_bad_case: Callable[[DataError], None] | None = None) -> list[str]:
    """Predict and score every case under every setting, appending rows case by case.

    Args:
        on_bad_case: called with the error of a case that cannot be loaded, which is
            then skipped; without it the error stops the evaluation (rows of the cases
            before it are already on disk).

    Cases already journalled in the run folder (a resumed run) are not redone.

    Returns:
        The ids of the cases evaluated, in this call or before.
    """
    settings = task.settings()
    done = run.completed_cases()
    for case in tqdm(cases, desc=f"evaluate {method.name}", unit="case", disable=not progress):
        if case.case_id in done:
            continue
        try:
            item = task.prepare(task.data.read(case))
        except DataError as exc:
            if on_bad_case is None:
                raise
            on_bad_case(exc)
            continue
        rows = []
        for setting in settings:
            inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
            rows.extend(task.score(method.predict(inputs, setting.available), item, setting))
        run.record_case(case.case_id, rows)
        done.append(case.case_id)
    return done
