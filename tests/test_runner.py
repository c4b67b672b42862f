"""The runner on bad data: clear errors, nothing computed is lost, optional skipping."""

from __future__ import annotations

import csv
import shutil

import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.datasets.brats18 import BraTS18
from xhbench.harness.store import find_runs

SMALL = ["--profile", "smoke", "--set", "task.phantom_train=2", "--set", "task.phantom_test=2"]


@pytest.fixture
def broken_root(tmp_path, tmp_path_factory):
    """A phantom data root whose second test case lacks its T2 file."""
    source = BraTS18.open(None, cache_dir=tmp_path_factory.getbasetemp() / "cache", seed=0,
                          cases_per_split={"train": 2, "val": 1, "test": 2}, size=32)
    root = tmp_path / "data"
    shutil.copytree(source.root, root)
    data = BraTS18(root)
    victim = data.cases("test")[1]
    victim.images["t2"].unlink()
    return root, victim


def run(entry_points, *args):
    from conftest import fake_method_plugin

    entry_points("fake", fake_method_plugin())
    return CliRunner().invoke(cli, ["run", "--task", "brats18_missing", "--method", "fake",
                                    *SMALL, *args])


def test_bad_case_stops_the_run_with_case_and_file_and_keeps_earlier_rows(
        entry_points, broken_root, tmp_path):
    root, victim = broken_root
    result = run(entry_points, "--data-root", str(root), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert f"case {victim.case_id}" in result.output and "t2.nii.gz" in result.output
    assert "Traceback" not in result.output
    finished, unfinished = find_runs(tmp_path / "out", "brats18_missing")
    assert not finished and len(unfinished) == 1
    rows = unfinished[0].cases()
    assert set(rows["case"]) == {BraTS18(root).cases("test")[0].case_id}


def test_skip_bad_cases_records_each_skipped_case(entry_points, broken_root, tmp_path):
    root, victim = broken_root
    result = run(entry_points, "--data-root", str(root), "--out", str(tmp_path / "out"),
                 "--skip-bad-cases")
    assert result.exit_code == 0, result.output
    (done,), _ = find_runs(tmp_path / "out", "brats18_missing")
    with done.file("skipped.csv").open() as handle:
        skipped = list(csv.DictReader(handle))
    assert [row["case"] for row in skipped] == [victim.case_id]
    assert skipped[0]["file"].endswith("t2.nii.gz") and "missing" in skipped[0]["reason"]
    assert done.summary["data"]["n_cases"] == 1 and done.summary["data"]["skipped_cases"] == 1
    assert victim.case_id not in set(done.cases()["case"])
