"""The training engine through a method plugin: the guide's example (docs/examples/tinynet.py)
trained by ``xhbench run``, its history.csv and cost, a resumed history, and a loss that
turns NaN ending the run with one line."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import xhbench
from xhbench.cli import cli
from xhbench.harness.config import resolve
from xhbench.results import find_runs
from xhbench.tasks.base import TaskSpec
from xhbench.training import state as training_state

from conftest import plugin_module

EXAMPLE = Path(__file__).parents[1] / "docs" / "examples" / "tinynet.py"
RUN = ["run", "--task", "brats18_missing", "--profile", "smoke",
       "--set", "task.phantom_train=2", "--set", "task.phantom_test=1"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def load_example():
    spec = importlib.util.spec_from_file_location("tinynet", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tinynet(entry_points, monkeypatch):
    module = load_example()
    entry_points("tinynet", module)
    return module


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_guide_plugin_trains_in_xhbench_run(tinynet, tmp_path):
    result = CliRunner().invoke(cli, [*RUN, "--method", "tinynet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path, "brats18_missing")
    history = rows(run.file("history.csv"))
    assert list(history[0]) == ["stage", "step", "lr", "loss", "ce"]
    assert [(r["stage"], r["step"]) for r in history] == [("train", "0"), ("train", "1")]
    assert all(r["loss"] == r["ce"] and float(r["lr"]) == 1e-2 for r in history)
    cost = json.loads(run.file("cost.json").read_text())
    # two steps of a batch of 2 from the 2 training cases
    assert cost["train_steps"] == 2 and cost["train_samples"] == 4


def test_a_nan_loss_ends_the_run_with_one_line(tinynet, entry_points, tmp_path):
    class NaNAtStep3(tinynet.TinyNet):
        name = "nan3"

        def training_step(self, batch, step):
            terms = super().training_step(batch, step)
            return {"ce": terms["ce"] * float("nan")} if step == 3 else terms

    @xhbench.hookimpl
    def xhbench_register_methods(register):
        register("nan3", "xhbench_nan3:NaNAtStep3", kinds=("segmentation",))

    entry_points("nan3", plugin_module("xhbench_nan3", NaNAtStep3=NaNAtStep3,
                                       xhbench_register_methods=xhbench_register_methods))
    result = CliRunner().invoke(cli, [*RUN, "--method", "nan3", "--set", "method.steps=5",
                                      "--set", "method.checkpoint_every=2",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    (line,) = [line for line in result.output.splitlines() if "loss is nan" in line]
    assert "at step 3" in line and "loss terms: ce nan" in line
    assert "last good checkpoint" in line and "training_state.pt" in line
    _, (run,) = find_runs(tmp_path, "brats18_missing")
    assert [r["step"] for r in rows(run.file("history.csv"))] == ["0", "1", "2"]
    status = run.status  # the run folder says it failed, and why
    assert status["state"] == "failed" and "loss is nan at step 3" in status["error"]


def test_a_resumed_history_holds_each_step_once_with_the_straight_values(monkeypatch,
                                                                        tmp_path):
    module = load_example()
    spec = TaskSpec("t", "segmentation", ("a", "b"), ("background", "x"))
    rng = np.random.default_rng(0)
    data = [{"image": torch.as_tensor(rng.normal(size=(2, 8, 8, 8)), dtype=torch.float32),
             "label": torch.as_tensor(rng.integers(0, 2, (1, 8, 8, 8)))} for _ in range(3)]

    def train(folder: Path):
        torch.manual_seed(0)
        config = resolve("tinynet", module.TinyNetConfig, module.TinyNet.profiles, "default",
                         {"steps": 5, "checkpoint_every": 2})
        folder.mkdir(exist_ok=True)
        return module.TinyNet(config, spec, torch.device("cpu")).fit(data, folder, lambda _: None)

    train(tmp_path / "straight")
    save = training_state.save_training_state
    saved = []

    def save_and_crash_later(*args, **kwargs):  # crash one step after the second save
        save(*args, **kwargs)
        saved.append(kwargs["step"])

    class Crash(Exception):
        pass

    original = module.TinyNet.training_step

    def crashing_step(self, batch, step):
        if saved == [2, 4]:
            raise Crash
        return original(self, batch, step)

    with monkeypatch.context() as patch:
        patch.setattr(training_state, "save_training_state", save_and_crash_later)
        patch.setattr(module.TinyNet, "training_step", crashing_step)
        with pytest.raises(Crash):
            train(tmp_path / "stopped")
    assert [r["step"] for r in rows(tmp_path / "stopped" / "history.csv")] == [
        "0", "1", "2", "3"]
    # a step the crash cut short, and one beyond the last state: rewritten, not duplicated
    with (tmp_path / "stopped" / "history.csv").open("a") as handle:
        handle.write("train,4,0.01,9.0,9.0\n")
    train(tmp_path / "stopped")
    assert rows(tmp_path / "stopped" / "history.csv") == rows(
        tmp_path / "straight" / "history.csv")
    assert len(rows(tmp_path / "straight" / "history.csv")) == 5


def test_the_guide_shows_the_example_file_as_it_is():
    guide = (EXAMPLE.parents[1] / "architecture.md").read_text()
    block = guide.split("<!-- example: docs/examples/tinynet.py -->\n```python\n")[1]
    assert block.split("```\n<!-- end example -->")[0] == EXAMPLE.read_text()
