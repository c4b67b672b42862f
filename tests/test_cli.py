"""The command line end to end: list, run, leaderboard, compare, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

import xhbench
from xhbench.cli import cli, register_plugin_commands
from xhbench.results import find_runs
from xhbench.plugins import get_plugins

from conftest import fake_method_plugin, plugin_module

SMALL = ["--profile", "smoke", "--set", "task.phantom_train=2", "--set", "task.phantom_test=2"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and xhbench.__version__ in result.output


def test_listing_does_not_import_torch():
    code = ("import sys; from click.testing import CliRunner; from xhbench.cli import cli; "
            "r = CliRunner().invoke(cli, ['list', 'methods']); "
            "assert r.exit_code == 0, r.output; print(r.output); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "swinunetr" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_list_methods_shows_a_contributed_plugin_and_its_tasks(entry_points):
    entry_points("fake", fake_method_plugin())
    result = invoke("list", "methods")
    assert result.exit_code == 0
    assert "swinunetr: " in result.output
    assert "fake: threshold test method  [tasks: " in result.output
    fake_line = next(l for l in result.output.splitlines() if l.startswith("fake: "))
    assert "brats18_missing" in fake_line and "brats23_transfer" not in fake_line
    rows = json.loads(invoke("list", "methods", "--json").output)
    assert {row["name"]: row["plugin"] for row in rows}["fake"] == "fake"


def test_list_tasks_datasets_and_options():
    assert "brats18_missing: " in invoke("list", "tasks").output
    assert "brats18: " in invoke("list", "datasets").output
    options = invoke("list", "methods", "-q", "swin", "--options").output
    assert "feature_size: int = 12" in options and "profile smoke" in options
    assert ("swinunetr: SwinUNETR from scratch (MONAI); missing inputs zero-filled  [tasks: "
            in options)
    assert ("\n    options (--set method.NAME=VALUE), each with its value before a profile "
            "and its range:\n    roi: tuple[int, int, int] = (64, 64, 64)  (>= 1)\n") in options
    assert "\n    profile default (xhbench run without --profile): {'roi': (32, 32, 32), " \
        in options
    tasks = invoke("list", "tasks", "-q", "brats18", "--options").output
    assert "\n    options (--set task.NAME=VALUE), each with" in tasks
    datasets = invoke("list", "datasets", "-q", "brats18", "--options").output
    assert "options (--set" not in datasets  # a data set has attributes, no options


def test_broken_plugin_is_listed_and_does_not_break_runs(entry_points, tmp_path):
    entry_points("broken", None, value="xhbench_missing_plugin_module")
    entry_points("fake", fake_method_plugin())
    listing = invoke("list", "plugins")
    assert listing.exit_code == 0
    assert "broken (xhbench_missing_plugin_module): ERROR: failed to load" in listing.output
    result = invoke("run", "--task", "brats18_missing", "--method", "fake", "--out",
                    str(tmp_path), *SMALL)
    assert result.exit_code == 0, result.output


def test_run_leaderboard_compare_with_a_plugin_method(entry_points, tmp_path):
    entry_points("fake", fake_method_plugin())
    results = tmp_path / "results"
    for seed in ("0", "1"):
        result = invoke("run", "--task", "brats18_missing", "--method", "fake", "--seed", seed,
                        "--out", str(results), *SMALL)
        assert result.exit_code == 0, result.output
    finished, unfinished = find_runs(results, "brats18_missing")
    assert len(finished) == 2 and not unfinished
    run = finished[0]
    for name in ("config.json", "environment.json", "cases.csv", "cost.json", "checkpoint.pt",
                 "log.txt", "summary.json"):
        assert run.file(name).exists(), name
    cases = run.cases()
    assert len(cases) == 2 * 15 * 4  # cases x masks x (WT, TC, ET, ET_postpro)
    assert set(cases["setting"]) == {str(i) for i in range(1, 16)}
    summary = run.summary
    assert summary["data"]["origin"] == "phantom" and summary["data"]["n_cases"] == 2
    assert summary["cost"]["eval_seconds_per_case"] > 0

    board = invoke("leaderboard", "--task", "brats18_missing", "--results", str(results))
    assert board.exit_code == 0
    line = next(l for l in board.output.splitlines() if l.startswith("| fake"))
    assert "0,1" in line and "±" in line and "phantom" in line

    reference = tmp_path / "reference.json"
    reference.write_text(invoke("leaderboard", "--task", "brats18_missing", "--results",
                                str(results), "--format", "json").output)
    assert invoke("compare", str(reference), str(reference)).exit_code == 0
    worse = json.loads(reference.read_text())
    for row in worse["rows"]:
        for metric in row["metrics"]:
            if metric["target"] == "WT":
                metric["mean"] = (metric["mean"] or 0) - 0.1
    doctored = tmp_path / "worse.json"
    doctored.write_text(json.dumps(worse))
    # The reference is better than the doctored file: comparing reference -> doctored regresses.
    result = CliRunner().invoke(cli, ["compare", str(reference), str(doctored)])
    assert result.exit_code == 1
    assert "WT" in result.output
    # --method picks the rows compared; a name the reference lacks is an error
    assert invoke("compare", str(reference), str(doctored), "--method", "fake").exit_code == 1
    missing = CliRunner().invoke(cli, ["compare", str(reference), str(doctored),
                                       "--method", "other"])
    assert missing.exit_code == 2 and "REFERENCE has no row of method(s) other" in missing.output


@pytest.mark.parametrize("args, message", [
    (["--task", "nope", "--method", "swinunetr"], "unknown task 'nope'"),
    (["--task", "brats18_missing", "--method", "swinunet"], "Did you mean: swinunetr"),
    (["--task", "brats18_missing", "--method", "synth_only"], "does not support task"),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "steps=many"],
     "expected int"),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "bogus=1"],
     "unknown option"),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "steps"], "key=value"),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "stepz=1"],
     "Error: --set stepz: unknown option (did you mean steps?); task options: "),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "task.phantom_trian=2"],
     "Error: task brats18_missing: unknown option(s) phantom_trian (did you mean "
     "phantom_train?); known: phantom_seed, "),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "task.roi=16,16,16"],
     "Error: --set task.roi: roi is a method option, not a task option; write method.roi\n"),
    (["--task", "brats18_missing", "--method", "swinunetr", "--set", "method.phantom_size=8"],
     "Error: --set method.phantom_size: phantom_size is a task option, not a method option; "
     "write task.phantom_size\n"),
])
def test_bad_run_input_is_exit_code_2(entry_points, tmp_path, args, message):
    entry_points("synth_only", fake_method_plugin("synth_only", kinds=("synthesis",)))
    result = CliRunner().invoke(cli, ["run", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not list(tmp_path.iterdir())  # nothing was started


def test_plugin_commands_hook(entry_points):
    @xhbench.hookimpl
    def xhbench_register_commands(cli):
        @cli.command(name="hello-plugin")
        def hello():
            """Say hello."""
            click.echo("hello from a plugin")

    entry_points("greeter", plugin_module("xhbench_greeter",
                                          xhbench_register_commands=xhbench_register_commands))
    group = click.Group()
    register_plugin_commands(group)
    result = CliRunner().invoke(group, ["hello-plugin"])
    assert result.output == "hello from a plugin\n"


def test_plugin_command_hook_that_raises_is_recorded(entry_points):
    @xhbench.hookimpl
    def xhbench_register_commands(cli):
        raise RuntimeError("no commands today")

    entry_points("grumpy", plugin_module("xhbench_grumpy",
                                         xhbench_register_commands=xhbench_register_commands))
    register_plugin_commands(click.Group())
    assert "no commands today" in get_plugins().errors["grumpy"]
