"""hnscc_nsclc_transfer: two evaluation sets (HNSCC validation, NSCLC) kept apart, NAC-PET
normalisation, real roots, the split label, and the task end to end with its Table 6."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.datasets.base import split_sha256
from xhbench.datasets.tcia_petct import HNSCC, NSCLC
from xhbench.errors import ConfigError, DataError
from xhbench.harness.config import resolve
from xhbench.harness.runner import open_task
from xhbench.results import find_runs
from xhbench.tasks.hnscc_nsclc_transfer import HNSCC_VAL, NSCLC_SET, HNSCCNSCLCTransfer

from test_autopet_tasks import copy_method_plugin

TASK = HNSCCNSCLCTransfer


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make_task(data_root=None, **overrides):
    config = resolve(TASK.name, TASK.Config, TASK.profiles, "smoke", {}, overrides)
    return open_task(TASK, config, data_root)  # the HNSCC data set and, if read, NSCLC


def test_phantom_evaluates_hnscc_validation_and_the_nsclc_phantom():
    task = make_task()
    sets = task.evaluation_sets()
    assert list(sets) == [HNSCC_VAL, NSCLC_SET]
    assert [c.case_id for c in sets[HNSCC_VAL]] == task.data.split_ids("val")
    assert [c.case_id for c in sets[NSCLC_SET]] == ["ACRIN-NSCLC-FDG-PET-001",
                                                   "ACRIN-NSCLC-FDG-PET-002"]
    assert task.test_cases() == [*sets[HNSCC_VAL], *sets[NSCLC_SET]]
    assert not {c.case_id for c in task.train_cases()} & {c.case_id for c in task.test_cases()}
    assert [s.id for s in task.settings()] == ["NAC"]
    assert task.spec.in_channels == ("NAC", "AC", "CT")
    assert [c.case_id for c in make_task(evaluate_on="nsclc").test_cases()] == \
        [c.case_id for c in sets[NSCLC_SET]]
    assert len(make_task(max_test_cases=1).test_cases()) == 2  # the cap is per set


def test_the_runner_opens_nsclc_only_when_it_is_evaluated():
    assert make_task().extra_data["nsclc"].name == "nsclc"
    assert "nsclc" not in make_task(evaluate_on="hnscc").extra_data


def test_split_label_names_each_evaluated_set():
    assert make_task().evaluation_split() == "hnscc:val + nsclc:test"
    assert make_task(evaluate_on="hnscc").evaluation_split() == "hnscc:val"
    assert make_task(evaluate_on="nsclc").evaluation_split() == "nsclc:test"


def test_rows_carry_the_evaluation_set_and_a_per_case_average():
    task = make_task()
    positive = 0
    for case in (task.evaluation_sets()[HNSCC_VAL][0], task.evaluation_sets()[NSCLC_SET][0]):
        volume = task.data.read(case)
        item = task.prepare(volume)
        nac = volume.image[volume.modalities.index("nac_pet")]
        # NAC-PET is scaled per case: its body 99.5th percentile maps to 1
        high = np.percentile(nac[item.foreground], 99.5)
        np.testing.assert_allclose(item.image[0], np.clip(nac / high, 0, 1), atol=1e-5)
        prediction = np.clip(item.reference * 0.95, 0, 1)
        rows = task.score(prediction, item, task.settings()[0])
        expected = HNSCC_VAL if case.case_id.startswith("HNSCC") else NSCLC_SET
        assert {r["setting"] for r in rows} == {expected}
        assert [r["target"] for r in rows if r["metric"] == "ssim"] == ["NAC->CT", "NAC->AC",
                                                                        "Avg."]
        value = {(r["target"], r["metric"]): r["value"] for r in rows}
        assert value[("Avg.", "psnr")] == pytest.approx(
            (value[("NAC->CT", "psnr")] + value[("NAC->AC", "psnr")]) / 2)
        # uptake errors of NAC->AC in the phantom's lesion mask: SUV scaled by 0.95
        uptake = {r["metric"]: r for r in rows if r["metric"].endswith("_error")}
        positive += bool(item.lesions.any())
        assert bool(uptake) == bool(item.lesions.any())
        if uptake:
            assert {r["target"] for r in uptake.values()} == {"NAC->AC"}
            for metric in ("suvmax_error", "suvmean_error", "suvpeak_error", "tlg_error"):
                assert uptake[metric]["value"] == pytest.approx(0.05, abs=1e-5), metric
            assert uptake["mtv_error"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert positive >= 1


def test_real_roots_need_an_nsclc_root_and_distinct_case_ids(tmp_path):
    hnscc_root, nsclc_root = tmp_path / "hnscc", tmp_path / "nsclc"
    HNSCC.write_phantom(hnscc_root, seed=1, cases_per_split={"train": 2, "val": 1}, size=32)
    NSCLC.write_phantom(nsclc_root, seed=1, cases_per_split={"test": 1}, size=32)
    task = make_task(hnscc_root)  # no manifest: a real layout, split by the patient hash
    assert task.data.origin == "real"
    with pytest.raises(ConfigError, match="nsclc_root"):
        task.test_cases()
    assert [c.case_id for c in make_task(hnscc_root, evaluate_on="hnscc").test_cases()] == \
        task.data.split_ids("val")
    both = make_task(hnscc_root, nsclc_root=str(nsclc_root))
    assert [c.case_id for c in both.evaluation_sets()[NSCLC_SET]] == ["ACRIN-NSCLC-FDG-PET-001"]
    with pytest.raises(DataError, match="both"):  # the HNSCC root read as NSCLC
        make_task(hnscc_root, nsclc_root=str(hnscc_root)).test_cases()


def test_end_to_end_with_table6(entry_points, tmp_path):
    entry_points("copy", copy_method_plugin())
    result = invoke("run", "--task", "hnscc_nsclc_transfer", "--method", "copy", "--profile",
                    "smoke", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path, "hnscc_nsclc_transfer")
    cases = run.cases()
    assert set(cases["setting"]) == {HNSCC_VAL, NSCLC_SET}
    assert cases.groupby("setting")["case"].nunique().to_dict() == {HNSCC_VAL: 2, NSCLC_SET: 2}
    assert set(cases["target"]) == {"NAC->CT", "NAC->AC", "Avg."}
    data = run.summary["data"]
    assert data["n_cases"] == 4 and data["split"] == "hnscc:val + nsclc:test"
    ids = [case.case_id for case in make_task().test_cases()]  # HNSCC val, then NSCLC
    assert len(ids) == 4 and data["split_sha256"] == split_sha256(ids)
    table = invoke("leaderboard", "--task", "hnscc_nsclc_transfer", "--results", str(tmp_path),
                   "--table", "table6", "--with-reported")
    assert table.exit_code == 0, table.output
    header = table.output.splitlines()[0]
    for column in ("ssim NAC->CT", "ssim NAC->AC", "ssim Avg.", "psnr NAC->CT", "psnr NAC->AC",
                   "psnr Avg."):
        assert column in header
    lines = table.output.splitlines()
    copy = [line for line in lines if "copy [smoke" in line]
    assert [line.split("|")[1].strip() for line in copy] == [HNSCC_VAL, NSCLC_SET]
    assert all(line.count("±") == 6 for line in copy)  # measured: all six cells
    ours = next(line for line in lines if "Ours — reported (paper, Table 6)" in line
                and NSCLC_SET in line)
    assert "0.6798" in ours and "32.77" in ours  # NSCLC: Avg. SSIM and PSNR as printed
    assert f"hnscc hnscc:val + nsclc:test@{data['split_sha256'][:12]}" in table.output
