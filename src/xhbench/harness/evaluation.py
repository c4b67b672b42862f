"""Evaluation: each test case is loaded and preprocessed once for all settings, and the
method predicts it under every setting in one call (:meth:`Method.predict_settings`),
so that it can share work across settings (one batch, each modality encoded once)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from tqdm.auto import tqdm

from ..datasets.base import Case
from ..errors import DataError
from ..tasks.base import EvalItem, Setting
from ..results import RunDir
from .downstream import ReferenceSegmenter

__all__ = ["SettingInputs", "evaluate"]


class SettingInputs(Sequence):
    """The network inputs of one prepared case, one per setting, built on access.

    ``inputs[i]`` is ``task.inputs(item, settings[i], handles_missing=...)``: for a
    zero-filling method a fresh zero-filled copy, so that a method indexing the settings
    in groups holds only one group's copies at a time (15 copies of a 4-channel
    240x240x155 case are 2 GiB); for a method that handles missing modalities the
    prepared image itself, the same array for every setting.
    """

    def __init__(self, task, item: EvalItem, settings: Sequence[Setting], handles_missing: bool):
        self.task = task
        self.item = item
        self.settings = list(settings)
        self.handles_missing = handles_missing

    def __len__(self) -> int:
        return len(self.settings)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.task.inputs(self.item, self.settings[index],
                                handles_missing=self.handles_missing)


def evaluate(task, method, cases: Sequence[Case], run: RunDir, *, progress: bool = True,
             on_bad_case: Callable[[DataError], None] | None = None,
             segmenter: ReferenceSegmenter | None = None) -> list[str]:
    """Predict and score every case under every setting, appending rows case by case.

    Each case is read and prepared once; ``method.predict_settings`` then predicts it
    under all the task's settings in one call.

    Args:
        progress: a progress bar on stderr, when stderr is a terminal.
        on_bad_case: called with the error of a case that cannot be loaded, which is
            then skipped; without it the error stops the evaluation (rows of the cases
            before it are already on disk).
        segmenter: the task's reference segmenter
            (:func:`~xhbench.harness.downstream.reference_segmenter`); with it, each
            prediction is also scored by :meth:`~xhbench.tasks.base.Task.downstream_rows`.

    Cases already journalled in the run folder (a resumed run) are not redone.

    Returns:
        The ids of the cases evaluated, in this call or before.
    """
    settings = task.settings()
    availables = [tuple(setting.available) for setting in settings]
    done = run.completed_cases()
    bar = progress and sys.stderr.isatty()  # as the training's: only on a terminal
    for case in tqdm(cases, desc=f"evaluate {method.name}", unit="case", disable=not bar):
        if case.case_id in done:
            continue
        try:
            item = task.prepare(task.data.read(case))
        except DataError as exc:
            if on_bad_case is None:
                raise
            on_bad_case(exc)
            continue
        inputs = SettingInputs(task, item, settings, method.handles_missing)
        predictions = method.predict_settings(inputs, availables)
        if len(predictions) != len(settings):
            raise RuntimeError(f"{method.name}.predict_settings returned {len(predictions)} "
                               f"predictions for {len(settings)} settings")
        rows = []
        for setting, prediction in zip(settings, predictions):
            rows.extend(task.score(prediction, item, setting))
            if segmenter is not None:
                rows.extend(task.downstream_rows(prediction, item, setting, segmenter))
        run.record_case(case.case_id, rows)
        done.append(case.case_id)
    return done
