"""The caches of trained weights (harness/weights_cache.py): a run that finds another
training the same weights waits on the lock and reuses them, and a file is never seen
half-written. One real swinunetr_ssl smoke run (1 pre-training step, 1 training step)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest
import torch
from filelock import FileLock

from xhbench.harness.runner import RunRequest, open_task, plan, pretraining_cache_file
from xhbench.harness.weights_cache import cache_entry, save_weights
from xhbench.results import find_runs

SMALL = {"task.phantom_train": "2", "task.phantom_test": "1", "task.max_train_cases": "1",
         "task.max_test_cases": "1", "method.pretrain_steps": "1", "method.steps": "1"}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wait_for_line(run_root, text: str, process: subprocess.Popen, timeout: float) -> None:
    """Until a log.txt under ``run_root`` holds ``text``; fails if ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in log.read_text() for log in run_root.rglob("log.txt")):
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended without logging {text!r}:\n{process.stdout.read()}")
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"no {text!r} within {timeout} s")


def test_a_run_that_finds_the_pretraining_under_way_waits_and_reuses_its_weights(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    request = RunRequest(task="brats18_missing", method="swinunetr_ssl", out=out,
                         profile="smoke", device="cpu", overrides=SMALL, cache_dir=cache)
    planned = plan(request)
    task = open_task(planned.task_cls, planned.task_config, None, cache, pretraining=True)
    first = planned.method_cls(planned.method_config, task.spec, torch.device("cpu"))
    path = pretraining_cache_file(first, task, task.pretraining_cases(), request.seed, cache)
    (tmp_path / "first").mkdir()
    sets = [arg for key, value in SMALL.items() for arg in ("--set", f"{key}={value}")]
    with FileLock(str(path) + ".lock"):  # the first run, pre-training these weights
        second = subprocess.Popen(
            [sys.executable, "-m", "xhbench", "run", "-t", "brats18_missing",
             "-m", "swinunetr_ssl", "--profile", "smoke", "--device", "cpu", *sets,
             "--out", str(out)],
            env={**os.environ, "XHBENCH_CACHE": str(cache)}, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        wait_for_line(out, f"waiting for {path}", second, timeout=300)
        cases = task.pretraining_cases()
        first.pretrain(task.pretraining_data(cases, first.roi), tmp_path / "first", print)
        save_weights(path, first.state_dict())
    written = sha256(path)
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    (run,), _ = find_runs(out, "brats18_missing")
    assert run.summary["training"]["pretraining"] == {"cached": str(path)}
    assert "pre-trained state reused from" in run.file("log.txt").read_text()
    assert sha256(path) == written  # not trained and written again
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, f"{path.name}.lock"]


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "weights" / "key.pt"
    with cache_entry(path) as cached:
        assert not cached

        def broken(state, file):
            open(file, "wb").write(b"half")
            raise OSError("disk full")

        monkeypatch.setattr(torch, "save", broken)
        with pytest.raises(OSError, match="disk full"):
            save_weights(path, {"w": torch.ones(2)})
    assert sorted(p.name for p in path.parent.iterdir()) == ["key.pt.lock"]
    monkeypatch.undo()
    with cache_entry(path) as cached:
        assert not cached
        save_weights(path, {"w": torch.ones(2)})
    with cache_entry(path) as cached:
        assert cached
        assert torch.equal(torch.load(path)["w"], torch.ones(2))
