"""What a run leaves and prints: the summary table, status.json, modes that follow the
umask, ``run --dry-run`` (writes nothing) and ``leaderboard --against`` on other cases."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.leaderboard.run_table import run_table
from xhbench.results import RunDir

from conftest import fake_method_plugin

SMALL = ["--profile", "smoke", "--set", "task.phantom_train=2", "--set", "task.phantom_test=2",
         "--set", "task.phantom_size=24"]


def finished_run(root, method, values, *, split_sha256="ab" * 32, task="toy_seg"):
    """A finished run folder; ``values`` maps (case, target, metric) to a value."""
    run = RunDir.create(root, task, method, 0, config_hash="cafe0123")
    run.write_json("config.json", {})
    run.append_rows({"case": c, "setting": "1", "target": t, "metric": m, "value": v}
                    for (c, t, m), v in values.items())
    run.finish({
        "run_id": run.path.name, "task": task, "task_version": 1, "method": method, "seed": 0,
        "profile": "smoke", "config_hash": "cafe0123" * 8, "xhbench_version": "0.1.0",
        "data": {"dataset": "toy", "origin": "phantom", "split": "test",
                 "split_sha256": split_sha256, "n_cases": len({k[0] for k in values})},
        "finished_at": "2025-01-01T00:00:00", "higher_is_better": {"dice": True},
        "conventions": {}, "cost": {}})
    return run


def test_run_table_is_mean_and_population_std_across_cases(tmp_path):
    wt = [0.2, 0.5, 0.9]
    run = finished_run(tmp_path, "m", {**{(f"c{i}", "WT", "dice"): v for i, v in enumerate(wt)},
                                       **{(f"c{i}", "ET", "dice"): 1.0 for i in range(3)}})
    lines = run_table(run).splitlines()
    wt_line = next(line for line in lines if line.startswith("| WT "))
    assert wt_line == (f"| WT | dice | ↑ | {np.mean(wt):.4f} | ± | {np.std(wt):.4f} | 3 |")
    assert "| ET | dice | ↑ | 1.0000 | ± | 0.0000 | 3 |" in lines


def test_a_run_prints_its_table_and_records_its_status(entry_points, tmp_path):
    entry_points("fake", fake_method_plugin())
    result = CliRunner().invoke(cli, ["run", "-t", "brats18_missing", "-m", "fake", *SMALL,
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for region in ("WT", "TC", "ET"):
        assert f"| {region} | dice | ↑ |" in result.output
    [run] = (tmp_path / "brats18_missing" / "fake").iterdir()
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["pid"] == os.getpid()
    assert RunDir(run).state == "finished"


def test_a_run_whose_process_is_gone_reads_as_interrupted(tmp_path):
    run = RunDir.create(tmp_path, "t", "m", 0, "cafe0123")
    run.write_status("running")
    assert run.state == "running"  # this process
    status = run.read_json("status.json")
    run.write_json("status.json", {**status, "pid": 2**22 + 12345})  # no such process
    assert run.state == "interrupted"


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_files_and_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        run = finished_run(tmp_path, "m", {("c0", "WT", "dice"): 0.5})
    finally:
        os.umask(old)
    for path in (run.path, run.path.parent, run.file("summary.json"), run.file("config.json")):
        full = 0o777 if path.is_dir() else 0o666
        assert stat.S_IMODE(path.stat().st_mode) == full & ~umask, path


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path):
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", "-t", "brats18_missing", "-m", "swinunetr",
                                      *SMALL, "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert '"method": "swinunetr"' in result.output and '"lr": 0.001' in result.output
    assert "main: brats18 phantom, 24^3" in result.output
    assert "Budget: train: 2 steps x batch 2 = 4 crops of 32x32x32" in result.output
    assert "Estimated time: unknown" in result.output
    assert not out.exists()


def test_dry_run_estimates_from_an_earlier_run_of_the_same_settings(entry_points, tmp_path):
    entry_points("fake", fake_method_plugin())
    args = ["run", "-t", "brats18_missing", "-m", "fake", *SMALL, "--out", str(tmp_path)]
    assert CliRunner().invoke(cli, args).exit_code == 0
    before = sorted(p.name for p in (tmp_path / "brats18_missing" / "fake").iterdir())
    result = CliRunner().invoke(cli, [*args, "--dry-run"])
    assert "Estimated time: about 0m" in result.output
    assert "(mean of 1 earlier run(s) of these settings" in result.output
    assert sorted(p.name for p in (tmp_path / "brats18_missing" / "fake").iterdir()) == before


def test_against_refuses_rows_on_another_split(tmp_path):
    values = {(f"c{i}", "WT", "dice"): 0.1 * i for i in range(8)}
    finished_run(tmp_path, "ref", values, split_sha256="ab" * 32)
    finished_run(tmp_path, "other", values, split_sha256="cd" * 32)
    result = CliRunner().invoke(cli, ["leaderboard", "--task", "toy_seg", "--results",
                                      str(tmp_path), "--against", "ref"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "Error: --against ref: the other row and the ref row were scored on different cases "
        f"(other: toy test@{'cd' * 6}, 8 cases; ref: toy test@{'ab' * 6}, 8 cases); compare "
        "runs of the same data and split (e.g. one --results folder per phantom size)")


def test_against_says_when_n_is_too_small(tmp_path):
    finished_run(tmp_path, "ref", {("c0", "WT", "dice"): 0.5, ("c1", "WT", "dice"): 0.6})
    finished_run(tmp_path, "new", {("c0", "WT", "dice"): 0.7, ("c1", "WT", "dice"): 0.9})
    result = CliRunner().invoke(cli, ["leaderboard", "--task", "toy_seg", "--results",
                                      str(tmp_path), "--against", "ref"])
    assert result.exit_code == 0, result.output
    assert "| n too small |" in result.output
    assert "n too small: fewer than 6 paired cases" in result.output


def test_a_run_logs_stage_headers_with_the_run_eta(entry_points, tmp_path):
    entry_points("fake", fake_method_plugin())
    args = ["run", "-t", "brats18_missing", "-m", "fake", *SMALL, "--out", str(tmp_path)]
    first = CliRunner().invoke(cli, args).output
    for stage in ("phantom", "training", "evaluation"):
        assert f"== {stage} == elapsed " in first
    assert "no ETA (no earlier run of these settings)" in first
    second = CliRunner().invoke(cli, args).output
    assert "== evaluation == elapsed 0m" in second and ", run ETA 0m" in second


def test_log_lines_print_above_a_progress_bar(monkeypatch):
    import io
    import logging

    from tqdm import tqdm

    from xhbench.cli.console import console_log

    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    with console_log():
        bar = tqdm(total=10, file=stream, ascii=True)
        bar.update(3)
        logging.getLogger("xhbench").warning("a log line")
        bar.close()
    # tqdm.write clears the bar, writes the line on its own, then redraws the bar
    assert "\na log line\n" in stream.getvalue().replace("\r", "\n")
