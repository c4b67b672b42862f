"""Bad input is refused before any work, in one line: option ranges, usage errors (exit 2),
unexpected errors (one line naming the traceback's file), ``-h`` and ``list --options``."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import xhbench
from xhbench.cli import cli
from xhbench.errors import ConfigError
from xhbench.harness.config import resolve
from xhbench.methods.missing.mmformer import MMFormerMethod as MMFormer
from xhbench.methods.swinunetr import SwinUNETRMethod
from xhbench.options import check_config, option, range_of
from xhbench.testing import FakeMethod

from conftest import plugin_module

SMALL = ["--profile", "smoke", "--set", "task.phantom_train=2", "--set", "task.phantom_test=2",
         "--set", "task.phantom_size=24"]


@pytest.mark.parametrize("key, value, message", [
    ("lr", "-1", "option lr=-1.0: must be > 0"),
    ("lr", "0", "option lr=0.0: must be > 0"),
    ("steps", "0", "option steps=0: must be >= 1"),
    ("sw_overlap", "1.5", "option sw_overlap=1.5: must be < 1"),
    ("sw_overlap", "-0.1", "option sw_overlap=-0.1: must be >= 0"),
    ("feature_size", "30", "option feature_size=30: must be a multiple of 12"),
    ("roi", "32,0,32", "option roi=32,0,32: must be >= 1"),
])
def test_out_of_range_method_options_are_refused(key, value, message):
    with pytest.raises(ConfigError, match=message):
        resolve("method swinunetr", SwinUNETRMethod.Config, SwinUNETRMethod.profiles, "smoke",
                {key: value})


def test_in_range_values_and_none_pass():
    config = resolve("method swinunetr", SwinUNETRMethod.Config, SwinUNETRMethod.profiles,
                     "smoke", {"lr": "1e-4", "sw_overlap": "0", "feature_size": "24",
                               "infer_roi": "none"})
    assert (config.lr, config.sw_overlap, config.feature_size, config.infer_roi) == (
        1e-4, 0.0, 24, None)


def test_a_redeclared_default_keeps_the_base_range():
    # MissingConfig changes lr's default (and mmformer's levels) without restating ranges
    assert MMFormer.Config.weight_decay != SwinUNETRMethod.Config.weight_decay
    assert range_of(MMFormer.Config, "lr").gt == 0
    assert range_of(MMFormer.Config, "levels").ge == 1
    with pytest.raises(ConfigError, match="lr=-0.5: must be > 0"):
        check_config("method mmformer", dataclasses.replace(MMFormer.Config(), lr=-0.5))


def test_option_bounds_are_each_checked():
    @dataclasses.dataclass
    class Config:
        fraction: float = option(0.5, gt=0, le=1)
        count: int | None = option(None, ge=2, multiple_of=2)

    check_config("x", Config(fraction=1.0, count=4))
    for bad, message in ((Config(fraction=0.0), "> 0"), (Config(fraction=1.01), "<= 1"),
                         (Config(count=1), ">= 2"), (Config(count=3), "multiple of 2")):
        with pytest.raises(ConfigError, match=message):
            check_config("x", bad)


def _xhbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XHBENCH_LOAD_PLUGINS": ""}
    return subprocess.run([sys.executable, "-m", "xhbench", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("assignment", ["method.lr=-1", "method.steps=0"])
def test_bad_value_exits_2_in_one_line_before_any_work(tmp_path, assignment):
    result = _xhbench("run", "--task", "brats18_missing", "--method", "swinunetr", "--profile",
                      "smoke", "--set", assignment, "--out", str(tmp_path / "results"),
                      cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: method swinunetr option ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_task_options_are_checked_before_the_phantom_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("XHBENCH_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["run", "-t", "brats18_missing", "-m", "swinunetr",
                                      "--profile", "smoke", "--set", "task.phantom_test=0",
                                      "--out", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: task brats18_missing option phantom_test=0: "
                                     "must be >= 1")
    assert not (Path(os.environ["XHBENCH_CACHE"]) / "phantoms").exists()
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("task, method, assignment, message", [
    ("autopet_seg", "threshold", "task.phantom_seed=-1",
     "task autopet_seg option phantom_seed=-1: must be >= 0"),
    ("autopet_transfer", "identity", "task.suv_max=0",
     "task autopet_transfer option suv_max=0.0: must be > 0"),
    ("autopet_seg", "threshold", "task.ct_min_hu=-400",
     "task autopet_seg options ct_min_hu=-400, body_hu=-500, ct_max_hu=1000: the body "
     "threshold must "
     "lie inside the CT window"),
    ("autopet_transfer", "identity", "task.ct_max_hu=-1000",
     "task autopet_transfer options ct_min_hu=-1000, body_hu=-500, ct_max_hu=-1000:"),
    ("hnscc_nsclc_transfer", "identity", "task.nac_percentile=101",
     "task hnscc_nsclc_transfer option nac_percentile=101.0: must be <= 100"),
    ("hnscc_nsclc_transfer", "identity", "task.nsclc_root={tmp}/nope",
     "task hnscc_nsclc_transfer option nsclc_root={tmp}/nope: not a folder"),
    ("brats23_transfer", "identity", "task.downstream_seed=-1",
     "task brats23_transfer option downstream_seed=-1: must be >= 0"),
    ("autopet_seg", "threshold", "method.suv=0", "method threshold option suv=0.0: must be > 0"),
    ("brats18_missing", "threshold", "method.grid_low=7",
     "method threshold options grid_low=7 and grid_high=6: grid_low must be < grid_high"),
    ("hnscc_nsclc_transfer", "identity", "task.body_hu=2000",
     "task hnscc_nsclc_transfer options ct_min_hu=-1000, body_hu=2000, ct_max_hu=1000:"),
])
def test_task_and_threshold_ranges_exit_2_in_one_line(tmp_path, monkeypatch, task, method,
                                                      assignment, message):
    monkeypatch.setenv("XHBENCH_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["run", "-t", task, "-m", method, "--profile", "smoke",
                                      "--set", assignment.format(tmp=tmp_path),
                                      "--out", str(tmp_path / "results")])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: {message.format(tmp=tmp_path)}")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("assignment, owner", [("task.pairs=T1->PD", "task brats23_transfer"),
                                               ("method.pairs=T1->PD", "method pix2pix2d")])
def test_an_unreadable_pair_names_its_task_or_method(tmp_path, monkeypatch, phantom_cache,
                                                     assignment, owner):
    """Pairs are read against the task's modalities (after the phantom is written)."""
    monkeypatch.setenv("XHBENCH_CACHE", str(phantom_cache))
    result = CliRunner().invoke(cli, ["run", "-t", "brats23_transfer", "-m", "pix2pix2d",
                                      "--profile", "smoke", "--set", assignment,
                                      "--out", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"Error: {owner} option pairs: cannot read 'T1->PD'; write SOURCE->TARGET with "
        "modalities T1, T1ce, T2, FLAIR, or 'all'")
    assert not (tmp_path / "results").exists()


def test_threshold_body_hu_outside_the_task_ct_window_exits_2_before_the_run(tmp_path,
                                                                            monkeypatch):
    """Checked when the method meets the task's CT window (after the phantom is written)."""
    monkeypatch.setenv("XHBENCH_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(cli, ["run", "-t", "autopet_seg", "-m", "threshold",
                                      "--profile", "smoke", "--set", "task.phantom_size=24",
                                      "--set", "method.body_hu=-2000",
                                      "--out", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: method threshold option body_hu=-2000: must lie inside the task's CT window "
        "(-1000, 1000) HU")
    assert not (tmp_path / "results").exists()


def test_missing_data_root_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", "-t", "brats18_missing", "-m", "swinunetr",
                                      "--data-root", str(tmp_path / "nonexistent")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_dash_h_is_help():
    for args in (["-h"], ["run", "-h"], ["list", "-h"]):
        result = CliRunner().invoke(cli, args, prog_name="xhbench")
        assert result.exit_code == 0 and result.output.startswith("Usage: xhbench")


@pytest.mark.parametrize("what", ["datasets", "plugins", "tasks"])
def test_list_options_exits_0(what):
    result = CliRunner().invoke(cli, ["list", what, "--options"])
    assert result.exit_code == 0, result.output
    if what == "datasets":
        assert "    modalities: ['flair', 't1', 't1ce', 't2']" in result.output
    if what == "tasks":
        assert "phantom_test: int = 6  (>= 1)" in result.output
    rows = json.loads(CliRunner().invoke(cli, ["list", what, "--options", "--json"]).output)
    assert rows


class BrokenMethod(FakeMethod):
    name = "broken"

    def fit(self, train_data, workdir, log):
        raise RuntimeError("the network fell over\nsecond line")


def _broken_plugin():
    @xhbench.hookimpl
    def xhbench_register_methods(register):
        register("broken", f"{__name__}:BrokenMethod", description="raises in fit",
                 kinds=("segmentation",))

    return plugin_module("xhbench_broken", xhbench_register_methods=xhbench_register_methods)


def test_unexpected_error_is_one_line_naming_the_log_with_the_traceback(entry_points, tmp_path):
    entry_points("broken", _broken_plugin())
    result = CliRunner().invoke(cli, ["run", "-t", "brats18_missing", "-m", "broken", *SMALL,
                                      "--out", str(tmp_path)])
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]  # after the run's log lines
    assert "Traceback" not in result.output
    [run] = (tmp_path / "brats18_missing" / "broken").iterdir()
    assert line == ("Error: RuntimeError: the network fell over "
                    f"(traceback in {run / 'log.txt'})")
    log = (run / "log.txt").read_text()
    assert "Traceback (most recent call last)" in log and "in fit" in log
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed"
    assert status["error"] == "RuntimeError: the network fell over"
    assert status["traceback"] == str(run / "log.txt")


def test_every_registered_profile_is_in_range():
    from xhbench.harness.config import PROFILES
    from xhbench.plugins import get_plugins

    registry = get_plugins().registry
    for kind in ("task", "method"):
        for entry in registry.entries(kind):
            cls = entry.load()
            for profile in PROFILES:
                resolve(f"{kind} {entry.name}", cls.Config, cls.profiles, profile)


@pytest.mark.parametrize("method, values, message", [
    ("unetr", {"hidden_size": "100", "num_heads": "6"},
     "method unetr option hidden_size=100: must be a multiple of num_heads=6"),
    ("resvit", {"cnn_steps": "0", "steps": "0"},
     "method resvit options cnn_steps=0 and steps=0: at least one training step in all"),
])
def test_a_config_validate_checks_across_fields_and_names_its_owner(method, values, message):
    from xhbench.plugins import get_plugins

    cls = get_plugins().registry.get("method", method).load()
    with pytest.raises(ConfigError) as raised:
        resolve(f"method {method}", cls.Config, cls.profiles, "default", values)
    assert str(raised.value) == message


def test_ours_checks_its_learning_rate():
    from xhbench.methods.ours.method import Ours as OursMethod

    with pytest.raises(ConfigError, match="method ours option lr=-1.0: must be > 0"):
        resolve("method ours", OursMethod.Config, OursMethod.profiles, "smoke", {"lr": "-1"})


def test_sweep_with_a_missing_data_root_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["sweep", "--tasks", "brats18_missing", "--methods",
                                      "swinunetr", "--data-root", str(tmp_path / "nope"),
                                      "--out", str(tmp_path / "results")])
    assert result.exit_code == 2
    assert f"folder {tmp_path / 'nope'} does not exist" in result.output
    assert not (tmp_path / "results").exists()
