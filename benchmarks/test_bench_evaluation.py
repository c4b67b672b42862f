"""Missing-modality evaluation of one case under the 15 modality subsets: xhbench's
``evaluate`` (the case read and prepared once, ``predict_settings`` over all subsets)
against the naive protocol loop of the reference code (15 independent passes, each
reading, preparing, predicting and scoring the case), at equal metrics.

mmformer: per-modality encoders, each modality encoded once per window and the fusion
run per subset. swinunetr: zero-filling, the 15 zero-filled inputs through the sliding
windows as one batch. Smoke widths, untrained networks (the metrics only have to agree).
"""

from __future__ import annotations

import pandas as pd
import pytest

from xhbench.harness.evaluation import evaluate
from xhbench.harness.store import RunDir

ROUNDS = 2


def naive_protocol(task, method, case) -> list[dict]:
    """One independent pass per subset, as the RFNet / mmFormer ``test`` scripts loop."""
    rows = []
    for setting in task.settings():
        item = task.prepare(task.data.read(case))
        inputs = task.inputs(item, setting, handles_missing=method.handles_missing)
        rows.extend(task.score(method.predict(inputs, setting.available), item, setting))
    return rows


@pytest.mark.parametrize("name", ["mmformer", "swinunetr"])
def test_batched_evaluation_against_the_naive_loop(name, benchmark, record_ratio, helpers,
                                                   brats_task, make_method, tmp_path):
    task = brats_task(32)
    method = make_method(name, task.spec)
    case = task.test_cases()[0]
    runs = []

    def ours():
        run = RunDir.create(tmp_path, task.name, method.name, 0, "0" * 64)
        evaluate(task, method, [case], run, progress=False)
        runs.append(run)
        return run.cases()

    def warmup():  # one window through the network, untimed
        item = task.prepare(task.data.read(case))
        setting = task.settings()[-1]
        method.predict(task.inputs(item, setting, handles_missing=method.handles_missing),
                       setting.available)

    anchor_times, ours_times, naive_rows, batched = helpers.interleave(
        benchmark, ours, lambda: naive_protocol(task, method, case), ROUNDS, warmup=warmup)
    naive = pd.DataFrame(naive_rows)
    keys = ["case", "setting", "target", "metric"]
    merged = naive.merge(batched, on=keys, suffixes=("_naive", "_batched"), validate="1:1")
    assert len(merged) == len(naive) == 15 * 4
    difference = (merged["value_naive"] - merged["value_batched"]).abs().max()
    assert difference <= 1e-6, merged
    summary = helpers.summary_ratio(anchor_times, ours_times)
    record_ratio(f"evaluation {name}: naive 15 passes / batched", summary["ratio_min"],
                 target=1.0,
                 meaning=f"one {tuple(task.prepare(task.data.read(case)).image.shape[1:])} "
                         f"case, fastest of {ROUNDS} rounds; median ratio "
                         f"{summary['ratio_median']:.2f}; largest metric difference "
                         f"{difference:.1e}",
                 **summary, metric_difference=float(difference))
