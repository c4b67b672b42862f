"""``xhbench figures``: mid-slice PNGs of transfer runs, rebuilt from the run folder.

A source-copying synthesis method (no training) keeps the run fast; the figures of a
trained GAN run are checked in ``test_translation_methods.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import plugin_module

import xhbench
from xhbench.cli import cli
from xhbench.harness.figures import figure_size, load_run, mid_slice
from xhbench.results import find_runs
from xhbench.methods.base import Method

TABLE1 = "T1->T2,T2->FLAIR,T1->T1ce"


@dataclass
class CopyConfig:
    roi: tuple[int, int, int] = (32, 32, 32)


class CopySource(Method):
    """Predicts every modality as a copy of the available source."""

    name = "copy"
    Config = CopyConfig
    profiles = {"smoke": {}, "default": {}, "paper": {}}

    def fit(self, train_data, workdir, log):
        return {"steps": 0}

    def predict(self, image, available):
        source = image[list(available).index(True)]
        return np.repeat(source[None], image.shape[0], axis=0).astype(np.float32)

    def state_dict(self):
        return {"copy": True}

    def load_state_dict(self, state):
        assert state == {"copy": True}


@xhbench.hookimpl
def xhbench_register_methods(register):
    register("copy", "xhbench_copy_plugin:CopySource", description="copies the source",
             kinds=("synthesis",))


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def copy_run(entry_points, tmp_path):
    entry_points("copy", plugin_module("xhbench_copy_plugin", CopySource=CopySource,
                                       xhbench_register_methods=xhbench_register_methods))
    result = invoke("run", "--task", "brats23_transfer", "--method", "copy", "--profile",
                    "smoke", "--set", f"task.pairs={TABLE1}", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,) = find_runs(tmp_path, "brats23_transfer")[0]
    return run


def test_figures_write_one_png_per_case_and_source_with_a_row_per_pair(copy_run):
    result = invoke("figures", "--run", str(copy_run.path), "--cases", "2")
    assert result.exit_code == 0, result.output
    paths = sorted((copy_run.path / "figures").glob("*.png"))  # default --out: RUN/figures
    cases = sorted({path.name.split("_from-")[0] for path in paths})
    assert len(cases) == 2
    assert sorted(path.name for path in paths) == sorted(
        f"{case}_from-{source}.png" for case in cases for source in ("T1", "T2"))
    assert sorted(result.output.split()) == sorted(str(path) for path in paths)
    for path in paths:
        assert path.stat().st_size > 0
        pixels = matplotlib.image.imread(path)
        rows = 2 if path.name.endswith("from-T1.png") else 1  # T1->T2, T1->T1ce | T2->FLAIR
        width, height = figure_size(rows)
        assert pixels.shape[:2] == (height, width)
        assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_figures_out_and_case_limit(copy_run, tmp_path):
    out = tmp_path / "elsewhere"
    result = invoke("figures", "--run", str(copy_run.path), "--out", str(out), "--cases", "1")
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.png"))) == 2
    assert not (copy_run.path / "figures").exists()


def test_load_run_rebuilds_task_and_method_from_the_run_folder(copy_run):
    task, method = load_run(copy_run.path)
    assert task.name == "brats23_transfer" and task.pairs == [("T1", "T2"), ("T2", "FLAIR"),
                                                             ("T1", "T1ce")]
    assert method.name == "copy" and method.spec.out_channels == ("T1", "T1ce", "T2", "FLAIR")
    assert len(task.test_cases()) == 2


def test_figures_refuse_other_runs(tmp_path):
    result = CliRunner().invoke(cli, ["figures", "--run", str(tmp_path)])
    assert result.exit_code == 2 and "config.json is missing" in result.output
    (tmp_path / "config.json").write_text(json.dumps({"task": "brats18_missing",
                                                      "task_config": {}}))
    result = CliRunner().invoke(cli, ["figures", "--run", str(tmp_path)])
    assert result.exit_code == 2 and "checkpoint.pt is missing" in result.output


def test_mid_slice_is_the_middle_of_the_foreground_extent():
    foreground = np.zeros((4, 4, 20), dtype=bool)
    foreground[1:3, 1:3, 5:12] = True
    assert mid_slice(foreground) == 8
    assert mid_slice(np.zeros((4, 4, 10), dtype=bool)) == 5
