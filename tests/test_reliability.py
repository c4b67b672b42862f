"""Reproducibility and concurrency of runs, through the real command line, and the git
revision a run records."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xhbench.results import find_runs
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


def test_killed_run_resumes_to_the_same_metrics(tmp_path):
    import signal
    import time

    resumable = ["--set", "method.steps=12", "--set", "method.checkpoint_every=2"]
    cache = tmp_path / "cache"
    _finish(_start(tmp_path / "straight", cache, *resumable))

    out = tmp_path / "killed"
    process = _start(out, cache, *resumable)
    deadline = time.monotonic() + 600
    while not list(out.glob("brats18_missing/swinunetr/*/training_state.pt")):
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert find_runs(out, "brats18_missing")[0] == []  # nothing finished

    _finish(_start(out, cache, *resumable, "--resume"))
    (resumed,), unfinished = find_runs(out, "brats18_missing")
    assert not unfinished  # the interrupted folder itself was finished
    assert resumed.summary["training"]["fit"]["resumed_at"] > 0
    (straight,), _ = find_runs(tmp_path / "straight", "brats18_missing")
    assert resumed.file("cases.csv").read_bytes() == straight.file("cases.csv").read_bytes()


def test_repair_keeps_only_journalled_cases(tmp_path):
    from xhbench.results import RunDir

    run = RunDir.create(tmp_path, "t", "m", 0, "0" * 64)
    row = {"setting": "1", "target": "WT", "metric": "dice", "value": 0.5}
    run.record_case("a", [{**row, "case": "a"}])
    run.append_rows([{**row, "case": "b"}])  # crashed before journalling b
    with run.file("cases.csv").open("a") as handle:
        handle.write("c,1,WT,di")  # and mid-line while writing c
    run.repair()
    assert list(run.cases()["case"]) == ["a"]
    assert run.completed_cases() == ["a"]


# -- the git revision a run records -------------------------------------------------------
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(folder, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c",
                           "user.email=t@t", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@needs_git
def test_git_revision_is_the_commit_of_the_package_folder_and_any_change_in_it(tmp_path):
    from xhbench.harness.environment import git_revision

    package = tmp_path / "repo" / "src" / "pkg"
    (package / "methods").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "methods" / "m.py").write_text("x = 1\n")
    _git(tmp_path / "repo", "init", "-q")
    _git(tmp_path / "repo", "add", ".")
    _git(tmp_path / "repo", "commit", "-qm", "one")
    head = _git(tmp_path / "repo", "rev-parse", "HEAD")
    assert git_revision(package) == head
    (tmp_path / "repo" / "notes.txt").write_text("outside the package")
    assert git_revision(package) == head
    (package / "methods" / "m.py").write_text("x = 2\n")  # a change anywhere in it
    assert git_revision(package) == head + "-dirty"


@needs_git
def test_git_revision_of_a_package_not_tracked_where_it_lies_is_none(tmp_path):
    """Installed into another project's checkout (a venv inside it): not that project's
    commit; outside any checkout: none."""
    from xhbench.harness.environment import git_revision

    project = tmp_path / "project"
    installed = project / ".venv" / "site-packages" / "pkg"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    (project / "README").write_text("another project")
    _git(project, "init", "-q")
    _git(project, "add", "README")
    _git(project, "commit", "-qm", "other")
    assert git_revision(installed) is None
    loose = tmp_path / "loose" / "pkg"
    loose.mkdir(parents=True)
    (loose / "__init__.py").write_text("")
    assert git_revision(loose) is None


@needs_git
def test_the_run_records_the_revision_of_the_source_that_ran():
    import xhbench
    from xhbench.harness.environment import git_revision

    package = Path(xhbench.__file__).resolve().parent
    tracked = subprocess.run(["git", "-C", str(package), "ls-files", "__init__.py"],
                             capture_output=True, text=True).stdout.strip()
    if not tracked:
        pytest.skip("xhbench is not run from a git checkout here")
    head = _git(package, "rev-parse", "HEAD")
    assert git_revision() in (head, head + "-dirty")


def test_the_summary_keeps_the_revision_recorded_when_the_run_started(tmp_path, monkeypatch):
    # a checkout that moves during a long run must not relabel what ran
    import torch

    from xhbench.harness import environment
    from xhbench.harness.runner import _started_revision, record_environment
    from xhbench.results import RunDir

    run = RunDir.create(tmp_path, "toy", "method", 0, config_hash="cafe0123")
    monkeypatch.setattr(environment, "git_revision", lambda source=None: "a" * 40)
    record_environment(run, torch.device("cpu"))
    monkeypatch.setattr(environment, "git_revision", lambda source=None: "b" * 40)
    assert _started_revision(run) == "a" * 40
    assert _started_revision(RunDir.create(tmp_path, "toy", "other", 0,
                                           config_hash="cafe0123")) == "b" * 40
