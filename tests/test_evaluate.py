"""``xhbench evaluate``: external predictions scored with the task's protocol, on phantoms."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.datasets.brats18 import BraTS18
from xhbench.datasets.brats23 import BraTS23
from xhbench.results import find_runs
from xhbench.tasks.brats18_missing import MASKS


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def brats18_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("brats18") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XHBENCH_LOAD_PLUGINS", "")
        result = invoke("datasets", "phantom", "brats18", "--out", root, "--size", 32,
                        "--train", 1, "--val", 1, "--test", 2)
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def brats23_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("brats23") / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XHBENCH_LOAD_PLUGINS", "")
        result = invoke("datasets", "phantom", "brats23", "--out", root, "--size", 32,
                        "--train", 1, "--val", 2)
    assert result.exit_code == 0, result.output
    return root


def write_seg(folder: Path, root: Path, make=lambda label: label, settings=MASKS):
    """One prediction per test case and setting: ``make(ground-truth labels)``."""
    cases = BraTS18(root).cases("test")
    for case in cases:
        image = nib.load(str(case.label))
        label = np.asarray(image.dataobj).astype(np.uint8)
        for setting in settings:
            (folder / setting.id).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(make(label), image.affine),
                     str(folder / setting.id / f"{case.case_id}.nii.gz"))
    return [case.case_id for case in cases]


def evaluate(task, pred, root, out, *extra):
    return invoke("evaluate", "--task", task, "--pred", pred, "--data-root", root,
                  "--out", out, *extra)


def the_run(out, task):
    finished, unfinished = find_runs(out, task)
    assert len(finished) == 1 and not unfinished
    return finished[0]


def test_oracle_segmentation_scores_one_and_shows_in_the_leaderboard(tmp_path, brats18_root):
    ids = write_seg(tmp_path / "oracle", brats18_root)
    out = tmp_path / "results"
    result = evaluate("brats18_missing", tmp_path / "oracle", brats18_root, out)
    assert result.exit_code == 0, result.output
    run = the_run(out, "brats18_missing")
    for name in ("config.json", "environment.json", "cases.csv", "summary.json"):
        assert run.file(name).exists(), name
    cases = run.cases()
    assert sorted(cases["case"].unique()) == sorted(ids)
    assert len(cases) == len(ids) * 15 * 4  # cases x masks x (WT, TC, ET, ET_postpro)
    assert np.allclose(cases["value"], 1.0)
    summary = run.summary
    assert summary["method"] == "external:oracle"
    assert summary["data"]["origin"] == "phantom" and summary["data"]["n_cases"] == 2
    assert summary["higher_is_better"] == {"dice": True}
    assert json.loads(run.file("config.json").read_text())["method"] == "external:oracle"
    board = invoke("leaderboard", "--task", "brats18_missing", "--results", out)
    assert board.exit_code == 0, board.output
    row = next(l for l in board.output.splitlines() if "external:oracle" in l)
    assert "1.0000 ± 0.0000" in row


def test_empty_prediction_scores_zero_whole_tumour(tmp_path, brats18_root):
    write_seg(tmp_path / "empty", brats18_root, make=np.zeros_like)
    out = tmp_path / "results"
    result = evaluate("brats18_missing", tmp_path / "empty", brats18_root, out,
                      "--method", "nothing")
    assert result.exit_code == 0, result.output
    run = the_run(out, "brats18_missing")
    assert run.summary["method"] == "external:nothing"
    wt = run.cases().query("target == 'WT'")["value"]
    assert len(wt) == 30 and (wt < 1e-6).all()


def test_prediction_is_cropped_like_the_reference(tmp_path, brats18_root):
    # Tumour labels moved outside the brain's bounding box must not count: only the crop
    # that preprocess applies is scored, so an all-background-inside prediction scores ~0.
    def outside_only(label):
        out = np.zeros_like(label)
        out[0, 0, 0] = 2
        return out

    write_seg(tmp_path / "outside", brats18_root, make=outside_only, settings=MASKS[:1])
    for setting in MASKS[1:]:
        shutil.copytree(tmp_path / "outside" / MASKS[0].id, tmp_path / "outside" / setting.id)
    out = tmp_path / "results"
    assert evaluate("brats18_missing", tmp_path / "outside", brats18_root, out).exit_code == 0
    assert (the_run(out, "brats18_missing").cases()
            .query("target == 'WT'")["value"] < 1e-6).all()


def test_missing_file_names_case_and_file_and_can_be_skipped(tmp_path, brats18_root):
    ids = write_seg(tmp_path / "pred", brats18_root)
    gone = tmp_path / "pred" / "7" / f"{ids[1]}.nii.gz"
    gone.unlink()
    out = tmp_path / "results"
    result = evaluate("brats18_missing", tmp_path / "pred", brats18_root, out)
    assert result.exit_code == 1
    assert f"case {ids[1]}" in result.output and str(gone) in result.output
    assert "prediction file missing" in result.output
    assert find_runs(out, "brats18_missing") == ([], [])  # nothing written

    result = evaluate("brats18_missing", tmp_path / "pred", brats18_root, out, "--skip-missing")
    assert result.exit_code == 0, result.output
    run = the_run(out, "brats18_missing")
    skipped = pd.read_csv(run.file("skipped.csv"))
    assert skipped["case"].tolist() == [ids[1]] and skipped["file"].tolist() == [str(gone)]
    assert set(run.cases()["case"]) == {ids[0]}
    assert run.summary["data"]["n_cases"] == 1 and run.summary["data"]["skipped_cases"] == 1


@pytest.mark.parametrize("problem, message", [
    ("shape", "prediction has shape (31, 32, 32)"),
    ("affine", "prediction affine differs"),
    ("values", "unexpected label values [3]"),
])
def test_bad_prediction_is_a_clear_error(tmp_path, brats18_root, problem, message):
    ids = write_seg(tmp_path / "pred", brats18_root)
    bad = tmp_path / "pred" / "1" / f"{ids[0]}.nii.gz"
    image = nib.load(str(bad))
    data, affine = np.asarray(image.dataobj), image.affine.copy()
    if problem == "shape":
        data = data[1:]
    elif problem == "affine":
        affine[0, 3] += 5.0
    else:
        data = np.where(data == 4, 3, data).astype(np.uint8)
    nib.save(nib.Nifti1Image(data, affine), str(bad))
    result = evaluate("brats18_missing", tmp_path / "pred", brats18_root, tmp_path / "results")
    assert result.exit_code == 1
    assert message in result.output
    assert f"case {ids[0]}" in result.output and str(bad) in result.output


def write_synthesis(folder: Path, root: Path, pairs, scale=1.0):
    """The reference target volumes themselves (times ``scale``) as predictions."""
    keys = {"T1": "t1n", "T1ce": "t1c", "T2": "t2w", "FLAIR": "t2f"}
    for case in BraTS23(root).cases("validation"):
        for source, target in pairs:
            image = nib.load(str(case.images[keys[target]]))
            (folder / source).mkdir(parents=True, exist_ok=True)
            data = np.asarray(image.dataobj, dtype=np.float32) * scale
            nib.save(nib.Nifti1Image(data, image.affine),
                     str(folder / source / f"{case.case_id}_{target}.nii.gz"))


PAIRS = [("T1", "T2"), ("T2", "FLAIR")]


def test_reference_volumes_as_synthesis_predictions_are_perfect(tmp_path, brats23_root):
    write_synthesis(tmp_path / "ref", brats23_root, PAIRS)
    out = tmp_path / "results"
    result = evaluate("brats23_transfer", tmp_path / "ref", brats23_root, out,
                      "--set", "pairs=T1->T2,T2->FLAIR")
    assert result.exit_code == 0, result.output
    cases = the_run(out, "brats23_transfer").cases()
    assert set(cases["target"]) == {"T1->T2", "T2->FLAIR"} and len(cases) == 2 * 2 * 3
    assert np.allclose(cases.query("metric == 'ssim'")["value"], 1.0, atol=1e-6)
    assert np.allclose(cases.query("metric == 'nmse'")["value"], 0.0, atol=1e-9)


def test_synthesis_prediction_is_normalised_with_the_reference_statistics(tmp_path,
                                                                          brats23_root):
    # A prediction twice as bright is not rescued by normalising it with its own statistics.
    write_synthesis(tmp_path / "bright", brats23_root, PAIRS, scale=2.0)
    out = tmp_path / "results"
    result = evaluate("brats23_transfer", tmp_path / "bright", brats23_root, out,
                      "--set", "pairs=T1->T2,T2->FLAIR")
    assert result.exit_code == 0, result.output
    cases = the_run(out, "brats23_transfer").cases()
    assert (cases.query("metric == 'nmse'")["value"] > 0.01).all()


def test_synthesis_missing_target_file_is_named(tmp_path, brats23_root):
    write_synthesis(tmp_path / "pred", brats23_root, PAIRS[:1])
    result = evaluate("brats23_transfer", tmp_path / "pred", brats23_root, tmp_path / "out",
                      "--set", "pairs=T1->T2,T2->FLAIR")
    assert result.exit_code == 1
    assert "_FLAIR.nii.gz" in result.output and "T2/" in result.output


def test_window_format_clips_like_the_reference():
    from types import SimpleNamespace

    from xhbench.tasks.autopet_transfer import AutoPETTransfer, WindowSynthesisFormat
    from xhbench.tasks.external_format import external_format

    task = SimpleNamespace(name="autopet_transfer", kind="synthesis",
                           windows=lambda: {"ct": (-1000.0, 1000.0), "nac_pet": "percentile"},
                           config=SimpleNamespace(nac_percentile=50.0))
    assert isinstance(external_format(AutoPETTransfer), WindowSynthesisFormat)
    foreground = np.array([True, True, True, False])
    ct = WindowSynthesisFormat().normalise_target(
        task, np.array([-2000.0, 0.0, 3000.0, 500.0]), None, None, foreground, key="ct")
    assert ct.tolist() == [0.0, 0.5, 1.0, 0.0]  # clipped, mapped, background 0
    nac = WindowSynthesisFormat().normalise_target(
        task, np.array([1.0, 2.0, 8.0, 1.0]), np.array([2.0, 4.0, 6.0, 100.0]), None,
        foreground, key="nac_pet")  # reference's median in the foreground: 4
    assert nac.tolist() == [0.25, 0.5, 1.0, 0.0]


def test_external_synthesis_gets_downstream_rows(tmp_path, brats23_root):
    """`xhbench evaluate` trains (or reuses) the reference segmenter as `run` does: the real
    target volumes as predictions lose nothing downstream."""
    write_synthesis(tmp_path / "ref", brats23_root, PAIRS)
    out = tmp_path / "results"
    result = evaluate("brats23_transfer", tmp_path / "ref", brats23_root, out,
                      "--set", "pairs=T1->T2,T2->FLAIR", "--set", "downstream=true",
                      "--set", "downstream_method=threshold", "--profile", "smoke")
    assert result.exit_code == 0, result.output
    run = the_run(out, "brats23_transfer")
    drops = run.cases().query("metric.str.startswith('downstream_drop_')", engine="python")
    assert len(drops) == 2 * 2 * 3 and (drops["value"].abs() < 1e-12).all()
    assert run.file("downstream.json").exists()


def write_challenge_layout(folder: Path, root: Path, make=lambda label: label):
    """The BraTS challenge layout: one flat folder of ``<case_id>.nii.gz``."""
    folder.mkdir(parents=True)
    for case in BraTS18(root).cases("test"):
        image = nib.load(str(case.label))
        label = np.asarray(image.dataobj).astype(np.uint8)
        nib.save(nib.Nifti1Image(make(label), image.affine), str(folder / f"{case.case_id}.nii.gz"))


def test_challenge_layout_scores_all_modalities_with_boundary_metrics(tmp_path, brats18_root):
    def shifted(label):
        return np.roll(label, 1, axis=0)

    write_challenge_layout(tmp_path / "team", brats18_root, make=shifted)
    out = tmp_path / "results"
    result = evaluate("brats18_missing", tmp_path / "team", brats18_root, out,
                      "--set", "task.settings=full", "--set", "task.metrics=paper+hd95")
    assert result.exit_code == 0, result.output
    cases = the_run(out, "brats18_missing").cases()
    assert set(cases["setting"].astype(str)) == {MASKS[-1].id}  # all modalities only
    hd = cases[cases["metric"] == "hd95"]
    assert set(hd["target"]) == {"WT", "TC", "ET"}
    case = BraTS18(brats18_root).cases("test")[0]
    step = float(nib.load(str(case.label)).header.get_zooms()[0])  # the phantom's voxel, mm
    assert np.allclose(hd[hd["target"] == "WT"]["value"], step)  # a one-voxel shift
    dice = cases[cases["metric"] == "dice"]
    assert (dice["value"] < 1).all() and (dice["value"] > 0.3).all()
    board = invoke("leaderboard", "--task", "brats18_missing", "--results", out)
    assert board.exit_code == 0 and "external:team" in board.output


def test_challenge_layout_with_the_official_lesionwise_protocol(tmp_path, brats18_root):
    pytest.importorskip("brats_evaluation", reason="needs pip install 'xhbench[brats]'")
    write_challenge_layout(tmp_path / "oracle", brats18_root)
    out = tmp_path / "results"
    result = evaluate("brats18_missing", tmp_path / "oracle", brats18_root, out,
                      "--set", "task.settings=full", "--set", "task.metrics=paper+lesionwise")
    assert result.exit_code == 0, result.output
    cases = the_run(out, "brats18_missing").cases()
    lesionwise = cases[cases["metric"] == "lesionwise_dice"]
    assert len(lesionwise) == 2 * 3 and np.allclose(lesionwise["value"], 1.0)
    assert np.allclose(cases[cases["metric"] == "lesionwise_hd95"]["value"], 0.0)
    assert np.allclose(cases[cases["metric"] == "dice"]["value"], 1.0)


def test_unmatched_files_and_cases_are_listed_with_the_real_grid(tmp_path, brats18_root):
    ids = write_seg(tmp_path / "pred", brats18_root)
    for setting in MASKS:  # every file of the first case misnamed
        path = tmp_path / "pred" / setting.id / f"{ids[0]}.nii.gz"
        path.rename(path.with_name(f"{ids[0]}_seg.nii.gz"))
    result = evaluate("brats18_missing", tmp_path / "pred", brats18_root, tmp_path / "out")
    assert result.exit_code == 1
    message = result.output
    assert "240x240x155" not in message and "this case's images are 32x32x32" in message
    assert f"cases without a file: {ids[0]};" in message
    misnamed = sorted(f"{s.id}/{ids[0]}_seg.nii.gz" for s in MASKS)
    assert f"files that match no case: {', '.join(misnamed[:10])} and 5 more;" in message


def test_single_setting_task_accepts_the_flat_nnunet_layout(tmp_path):
    from xhbench.datasets.autopet import AutoPET

    root = tmp_path / "autopet"
    assert invoke("datasets", "phantom", "autopet", "--out", root, "--size", 32, "--train", 1,
                  "--val", 1, "--test", 2).exit_code == 0
    pred = tmp_path / "pred"
    pred.mkdir()
    cases = AutoPET(root).cases("test")
    for case in cases:  # nnU-Net writes <case_id>.nii.gz straight into its output folder
        image = nib.load(str(case.label))
        nib.save(nib.Nifti1Image(np.asarray(image.dataobj).astype(np.uint8), image.affine),
                 str(pred / f"{case.case_id}.nii.gz"))
    out = tmp_path / "results"
    result = evaluate("autopet_seg", pred, root, out)
    assert result.exit_code == 0, result.output
    dice = the_run(out, "autopet_seg").cases().query("metric == 'dice'")["value"]
    assert len(dice) == len(cases) and dice.notna().any() and (dice.dropna() > 0.999).all()
