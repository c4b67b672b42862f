"""Reproducibility and concurrency of runs, through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from xhbench.harness.store import find_runs
from xhbench.leaderboard import build_leaderboard

TINY = ["--task", "brats18_missing", "--method", "swinunetr", "--profile", "smoke",
        "--set", "task.phantom_train=1", "--set", "task.phantom_test=1",
        "--set", "method.steps=1", "--set", "method.batch_size=1"]


def _start(out: Path, cache: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "XHBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "xhbench", "run", *TINY, "--out", str(out),
                             *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output


def test_same_seed_gives_identical_per_case_metrics(tmp_path):
    for name in ("a", "b"):
        _finish(_start(tmp_path / name, tmp_path / "cache"))
    tables = [find_runs(tmp_path / name, "brats18_missing")[0][0].file("cases.csv").read_bytes()
              for name in ("a", "b")]
    assert tables[0] == tables[1]
    assert tables[0].count(b"\n") == 1 + 15 * 4  # header + masks x regions


def test_concurrent_runs_into_one_results_folder(tmp_path):
    out, cache = tmp_path / "results", tmp_path / "cache"
    processes = [_start(out, cache, "--seed", str(seed)) for seed in (0, 1)]
    for process in processes:
        _finish(process)
    finished, unfinished = find_runs(out, "brats18_missing")
    assert len(finished) == 2 and not unfinished
    assert {run.summary["seed"] for run in finished} == {0, 1}
    board = build_leaderboard(out, "brats18_missing")
    assert list(board.rows["seeds"]) == [[0, 1]]
    leftovers = [p for p in out.rglob("*") if p.name.endswith((".tmp", ".lock"))]
    assert not leftovers
    assert len(list((cache / "phantoms" / "brats18").iterdir())) == 1  # written once, shared
