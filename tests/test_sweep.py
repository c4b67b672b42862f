"""``xhbench sweep``: the grid, skipping finished runs, failures reported by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.harness import sweep as sw
from xhbench.results import find_runs
from xhbench.leaderboard import build_leaderboard

# the two fastest methods of brats18_missing at their smallest (one step, one case)
GRID = ["--tasks", "brats18_missing", "--methods", "unetr,nnunet", "--seeds", "0,1",
        "--profile", "smoke", "--set", "task.phantom_train=1", "--set", "task.phantom_test=1",
        "--set", "method.steps=1", "--set", "method.batch_size=1"]


def _sweep(*args: str):
    return CliRunner().invoke(cli, ["sweep", *GRID, *args], catch_exceptions=False)


def test_local_sweep_runs_the_grid_and_a_rerun_skips_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "results"
    first = _sweep("--out", str(out), "--workers", "2")
    assert first.exit_code == 0, first.output
    assert "4 finished, 0 skipped, 0 failed" in first.output
    finished, unfinished = find_runs(out, "brats18_missing")
    assert len(finished) == 4 and not unfinished
    assert {(r.summary["method"], r.summary["seed"]) for r in finished} == {
        (m, s) for m in ("unetr", "nnunet") for s in (0, 1)}

    board = build_leaderboard(out, "brats18_missing")  # the leaderboard reads the sweep
    assert sorted(board.rows["method"]) == ["nnunet", "unetr"]
    assert all(seeds == [0, 1] for seeds in board.rows["seeds"])

    again = _sweep("--out", str(out), "--workers", "2")
    assert again.exit_code == 0, again.output
    assert "nothing to run: 4 finished" in again.output
    assert again.output.count("skipped   brats18_missing/") == 4
    assert len(find_runs(out, "brats18_missing")[0]) == 4  # nothing ran again

    other = _sweep("--out", str(out), "--set", "method.lr=0.01", "--dry-run")
    assert other.output.count("would run") == 4  # other settings: another config hash


def test_a_failed_run_is_reported_and_the_others_go_on(tmp_path):
    good = sw.SweepRun("t", "help", 0, "h", None, ("--help",))  # exits 0 at once
    bad = sw.SweepRun("t", "broken", 1, "h", None, ("--task", "nope", "--method", "x"))
    seen = []
    outcomes = sw.dispatch([bad, good], log_dir=tmp_path, workers=2, on_outcome=seen.append)
    assert seen == outcomes
    by_name = {o.run.name: o for o in outcomes}
    assert by_name["t/help/seed0"].status == "finished"
    failed = by_name["t/broken/seed1"]
    assert failed.status == "failed" and "unknown task 'nope'" in failed.detail
    assert failed.log == tmp_path / "t.broken.seed1.log" and failed.log.exists()


def test_sweep_exits_1_and_names_the_failed_runs(tmp_path, monkeypatch):
    def fake_dispatch(runs, *, on_outcome, **_):
        outcomes = [sw.Outcome(run, "failed" if run.seed else "finished", "exit code 1",
                               Path("x.log")) for run in runs]
        for outcome in outcomes:
            on_outcome(outcome)
        return outcomes

    monkeypatch.setattr(sw, "dispatch", fake_dispatch)
    result = CliRunner().invoke(cli, ["sweep", *GRID, "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "2 finished, 0 skipped, 2 failed" in result.output
    assert "FAILED    brats18_missing/unetr/seed1" in result.output
    assert "failed runs: brats18_missing/unetr/seed1, brats18_missing/nnunet/seed1" in (
        result.output)


def test_grid_expansion(tmp_path):
    grid = sw.expand(["brats18_missing", "autopet_transfer"], ["unetr", "rfnet"], [0, 1],
                     out=tmp_path, profile="smoke", assignments=["method.steps=1"])
    assert grid.unsupported == [("autopet_transfer", "rfnet")]  # left out, not an error
    assert [run.name for run in grid.runs] == [
        "brats18_missing/unetr/seed0", "brats18_missing/unetr/seed1",
        "brats18_missing/rfnet/seed0", "brats18_missing/rfnet/seed1",
        "autopet_transfer/unetr/seed0", "autopet_transfer/unetr/seed1"]
    args = grid.runs[1].args
    assert args[args.index("--seed") + 1] == "1" and "--resume" in args
    assert args[args.index("--set") + 1] == "method.steps=1"
    assert grid.runs[0].config_hash == grid.runs[1].config_hash  # seeds of one row
    from xhbench.errors import UsageError

    with pytest.raises(UsageError, match="trains in one process only"):
        sw.expand(["brats18_missing"], ["unetr", "m3ae"], [0], out=tmp_path, nproc=2)
    assert sw.parse_seeds("0,2-4,2") == [0, 2, 3, 4]
    assert sw.parse_list("a, b,,a") == ["a", "b"]


def test_bad_grid_fails_before_anything_runs(tmp_path):
    result = CliRunner().invoke(cli, ["sweep", "--tasks", "brats18_missing", "--methods",
                                      "unetr,nope", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "nope" in result.output
    assert not (tmp_path / ".sweeps").exists()


def test_submitit_executor_runs_jobs(tmp_path):
    pytest.importorskip("submitit")
    good = sw.SweepRun("t", "help", 0, "h", None, ("--help",))
    bad = sw.SweepRun("t", "broken", 1, "h", None, ("--task", "nope", "--method", "x"))
    outcomes = sw.dispatch([good, bad], log_dir=tmp_path, executor="submitit", workers=2,
                           options={"cluster": "local", "timeout_min": 5})
    assert {o.run.name: o.status for o in outcomes} == {"t/help/seed0": "finished",
                                                        "t/broken/seed1": "failed"}
    assert (tmp_path / "submitit").is_dir()


def test_submitit_missing_is_a_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    from xhbench.errors import UsageError

    with pytest.raises(UsageError, match=r"xhbench\[cluster\]"):
        sw.dispatch([sw.SweepRun("t", "m", 0, "h", None, ())], log_dir=tmp_path,
                    executor="submitit")
