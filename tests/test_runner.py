"""The runner on bad data: clear errors, nothing computed is lost, optional skipping."""

from __future__ import annotations

import csv
import shutil

import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.datasets.brats18 import BraTS18
from xhbench.results import find_runs
from xhbench.testing import FakeMethod

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


class Pretrainer(FakeMethod):
    """Records what pre-training saw; its state is a counter the cache must restore."""

    name = "pretrainer"
    pretrains = True
    seen: list = []

    def pretrain(self, data, workdir, log):
        sample = data[0][0]
        Pretrainer.seen.append((len(data), tuple(sample["image"].shape), sample["case_id"]))
        self.config.threshold = 0.5
        return {"steps": 1}

    def fit(self, train_data, workdir, log):
        assert self.config.threshold == 0.5  # pre-trained (or restored) state
        return {"steps": 0}


def test_no_evaluation_bar_off_a_terminal_and_diagnostics_logged_as_key_value_text(
        entry_points, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeMethod, "diagnostics",
                        lambda self: {"prior_contribution": 0.0123456, "voxels": 812},
                        raising=False)
    result = run(entry_points, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "evaluate fake" not in result.output and "case/s" not in result.output
    (done,), _ = find_runs(tmp_path / "out", "brats18_missing")
    assert "variant: - | diagnostics: prior_contribution 0.01235, voxels 812\n" in \
        done.file("log.txt").read_text()
    assert done.summary["diagnostics"] == {"prior_contribution": 0.0123456, "voxels": 812}


def test_pretraining_uses_the_declared_corpus_once_and_reuses_it(entry_points, tmp_path):
    import xhbench
    from conftest import plugin_module

    @xhbench.hookimpl
    def xhbench_register_methods(register):
        register("pretrainer", Pretrainer, kinds=("segmentation",))

    entry_points("pretrainer", plugin_module("xhbench_pretrainer",
                                             xhbench_register_methods=xhbench_register_methods))
    Pretrainer.seen.clear()
    args = ["run", "--task", "brats18_missing", "--method", "pretrainer", *SMALL,
            "--out", str(tmp_path / "out")]
    for _ in range(2):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert len(Pretrainer.seen) == 1  # the second run restored the cached state
    count, shape, case_id = Pretrainer.seen[0]
    assert count == 2 and shape == (4, 32, 32, 32)
    assert case_id.startswith("BraTS-GLI-")  # BraTS 2023 pre-trains the MRI tasks
    finished, _ = find_runs(tmp_path / "out", "brats18_missing")
    histories = sorted(str(run.summary["training"]["pretraining"]) for run in finished)
    assert "cached" in histories[0] and "saved" in histories[1]


def test_the_task_gets_each_data_set_it_declares_only_when_the_run_reads_it(tmp_path):
    from xhbench.harness.config import resolve
    from xhbench.harness.runner import open_task
    from xhbench.tasks.brats18_missing import BraTS18Missing

    config = resolve("task", BraTS18Missing.Config, BraTS18Missing.profiles, "smoke", {},
                     {"phantom_train": 2, "phantom_test": 1})
    plain = open_task(BraTS18Missing, config, None, tmp_path)  # a method that does not pre-train
    assert plain.data.name == "brats18" and plain.extra_data == {}
    assert plain.pretraining_corpus is plain.data
    assert [path.name for path in (tmp_path / "phantoms").iterdir()] == ["brats18"]
    pretraining = open_task(BraTS18Missing, config, None, tmp_path, pretraining=True)
    corpus = pretraining.extra_data["pretraining"]
    assert corpus.name == "brats23" and pretraining.pretraining_corpus is corpus
    assert pretraining.pretraining_cases() == corpus.cases("train")
    assert pretraining.train_cases() == plain.train_cases()  # fine-tuning data unchanged
