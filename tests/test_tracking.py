"""``xhbench run --track mlflow|tensorboard``: a finished run folder logged after the run,
read back from a local MLflow file store and from the TensorBoard event file.

Needs the ``track`` extra (mlflow-skinny, tensorboard); each test skips with the reason
when its package is missing (they are not in the ``test`` extra, so CI skips them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import fake_method_plugin

from xhbench.cli import cli
from xhbench.errors import UsageError
from xhbench.results import find_runs
from xhbench.tracking import final_metrics, flat_params, require, track

HISTORY = pd.DataFrame({"stage": ["pretrain", "pretrain", "train", "train", "train"],
                        "step": [1, 2, 1, 2, 3], "lr": [1e-3, 5e-4, 2e-4, 1e-4, 5e-5],
                        "loss": [2.0, 1.5, 1.0, 0.8, 0.7],
                        "dice": [np.nan, np.nan, 0.6, 0.5, 0.45]})


@pytest.fixture
def fake_run(entry_points, tmp_path):
    """A finished smoke run of the threshold method (no training) with a history.csv."""
    entry_points("fake", fake_method_plugin())
    result = CliRunner().invoke(cli, ["run", "--task", "brats18_missing", "--method", "fake",
                                      "--profile", "smoke", "--out", str(tmp_path / "results")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = find_runs(tmp_path / "results", "brats18_missing")[0]
    HISTORY.to_csv(run.file("history.csv"), index=False)
    return run


def expected_final(run) -> dict[str, float]:
    cases = pd.read_csv(run.file("cases.csv"))
    out = {}
    for (target, metric), rows in cases.groupby(["target", "metric"]):
        out[f"final/{target}/{metric}"] = rows.groupby("case")["value"].mean().mean()
    return out


def test_final_metrics_are_the_mean_over_cases_of_each_cases_setting_mean(fake_run):
    expected = expected_final(fake_run)
    assert final_metrics(fake_run) == pytest.approx(expected)
    assert set(expected) == {f"final/{r}/dice" for r in ("WT", "TC", "ET", "ET_postpro")}


def test_flat_params_use_dotted_keys():
    assert flat_params({"task": "t", "method_config": {"lr": 0.001, "roi": [32, 32, 32]}}) == {
        "task": "t", "method_config.lr": "0.001", "method_config.roi": "[32, 32, 32]"}


def test_tensorboard_event_file_reads_back(fake_run):
    pytest.importorskip("tensorboard", reason="the track extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = track(fake_run.path, "tensorboard")
    events = EventAccumulator(folder)
    events.Reload()
    scalars = events.Tags()["scalars"]
    train = HISTORY[HISTORY["stage"] == "train"]
    dice = events.Scalars("train/dice")
    assert [e.step for e in dice] == train["step"].tolist()
    assert [e.value for e in dice] == pytest.approx(train["dice"].tolist())
    assert [e.value for e in events.Scalars("pretrain/lr")] == pytest.approx([1e-3, 5e-4])
    assert "pretrain/dice" not in scalars  # empty cells are not logged
    for key, value in expected_final(fake_run).items():
        assert events.Scalars(key)[0].value == pytest.approx(value, rel=1e-6)


def test_run_track_mlflow_logs_params_history_final_metrics_and_the_folder(
        entry_points, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the track extra is not installed")
    from mlflow.tracking import MlflowClient

    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    entry_points("fake", fake_method_plugin())
    result = CliRunner().invoke(cli, ["run", "--task", "brats18_missing", "--method", "fake",
                                      "--profile", "smoke", "--out", str(tmp_path / "results"),
                                      "--track", "mlflow"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = find_runs(tmp_path / "results", "brats18_missing")[0]
    assert f"Tracked (mlflow): {store.as_uri()} run " in result.output
    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("xhbench/brats18_missing")
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.run_name == run.path.name
    config = run.read_json("config.json")
    assert logged.data.params["method"] == "fake"
    assert logged.data.params["task_config.phantom_size"] == str(
        config["task_config"]["phantom_size"])
    for key, value in expected_final(run).items():
        assert logged.data.metrics[key] == pytest.approx(value)
    artifacts = {a.path for a in client.list_artifacts(logged.info.run_id)}
    assert {"config.json", "cases.csv", "summary.json"} <= artifacts

    HISTORY.to_csv(run.file("history.csv"), index=False)  # a second logging with a history
    run_id = track(run.path, "mlflow").split(" run ")[1]
    history = client.get_metric_history(run_id, "train/loss")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (2, 0.8), (3, 0.7)]


def test_unknown_or_missing_tracker_is_a_usage_error(monkeypatch):
    with pytest.raises(UsageError, match="unknown tracker 'wandb'"):
        require("wandb")
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"pip install 'xhbench\[track\]'"):
        require("mlflow")
