"""A corpus of broken brats18 data roots: each error names case and file, everywhere.

Every broken root is a copy of one small phantom written once per module (with its
manifest, so the split is the phantom's: a copy without it would be "real" data and use
the 285-id shipped split). Each breakage is seen through ``read()`` / ``cases()``, through
``xhbench datasets check`` (which lists all problems at once) and through ``xhbench run``
(one ``Error:`` line, exit code 1, no traceback).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import fake_method_plugin

from xhbench.cli import cli
from xhbench.datasets import PHANTOM_MANIFEST
from xhbench.datasets.brats18 import BraTS18
from xhbench.errors import DataError


@dataclass
class Broken:
    """What a breakage should be reported as."""

    case: str | None  # the case named, None for a split-level problem
    file: str  # path relative to the root
    what: str  # a fragment of the message

    @property
    def line(self) -> str:
        """The start of the ``datasets check`` line."""
        where = f"case {self.case}, file {self.file}" if self.case else f"file {self.file}"
        return f"{where}: {self.what}"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pristine") / "brats18"
    result = CliRunner().invoke(cli, ["datasets", "phantom", "brats18", "--out", str(out),
                                      "--size", "24", "--train", "2", "--val", "1", "--test",
                                      "2"])
    assert result.exit_code == 0, result.output
    return out


def _copy(pristine: Path, tmp_path: Path) -> tuple[Path, BraTS18]:
    root = tmp_path / "broken"
    shutil.copytree(pristine, root)
    return root, BraTS18(root)


def _rewrite(path: Path, array=None, affine=None, dtype=None) -> None:
    image = nib.load(path)
    array = np.asarray(image.dataobj) if array is None else array
    affine = image.affine if affine is None else affine
    new = nib.Nifti1Image(array.astype(dtype or array.dtype), affine)
    new.set_qform(affine, code=1)
    new.set_sform(affine, code=1)
    nib.save(new, str(path))


def _rel(root: Path, path: Path) -> str:
    return str(Path(path).relative_to(root))


# Each breaker damages one case (a test case unless told otherwise) and says what to expect.
def missing_modality(root, data, case):
    case.images["t1ce"].unlink()
    return Broken(case.case_id, _rel(root, case.images["t1ce"]), "file missing")


def truncated(root, data, case):
    path = case.images["flair"]
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    return Broken(case.case_id, _rel(root, path), "cannot read NIfTI (")


def shape_mismatch(root, data, case):
    path = case.images["t2"]
    _rewrite(path, np.asarray(nib.load(path).dataobj)[:, :, :-2])
    return Broken(case.case_id, _rel(root, path),
                  "shape (24, 24, 22) differs from the case's (24, 24, 24)")


def affine_mismatch(root, data, case):
    path = case.images["t1"]
    affine = nib.load(path).affine.copy()
    affine[0, 3] += 5.0
    _rewrite(path, affine=affine)
    return Broken(case.case_id, _rel(root, path), "affine differs from the case's other images")


def nan_voxels(root, data, case):
    path = case.images["flair"]
    array = np.asarray(nib.load(path).dataobj, dtype=np.float32)
    array[12, 12, 10:13] = np.nan
    _rewrite(path, array)
    return Broken(case.case_id, _rel(root, path), "image holds NaN or infinite values")


def unexpected_label(root, data, case):
    label = np.asarray(nib.load(case.label).dataobj)
    label[np.nonzero(label == 2)[0][0], np.nonzero(label == 2)[1][0],
          np.nonzero(label == 2)[2][0]] = 3
    _rewrite(case.label, label)
    return Broken(case.case_id, _rel(root, case.label),
                  "unexpected label values [3]; allowed [0, 1, 2, 4]")


def empty_split(root, data, case):
    manifest = json.loads((root / PHANTOM_MANIFEST).read_text())
    manifest["splits"]["test"] = []
    (root / PHANTOM_MANIFEST).write_text(json.dumps(manifest))
    return Broken(None, PHANTOM_MANIFEST, "split 'test' lists no cases")


def absent_case(root, data, case):
    shutil.rmtree(case.images["flair"].parent)
    return Broken(case.case_id, PHANTOM_MANIFEST, "listed in split 'test' but not on disk")


BREAKERS = [missing_modality, truncated, shape_mismatch, affine_mismatch, nan_voxels,
            unexpected_label, empty_split, absent_case]
CASE_LEVEL = BREAKERS[:6]


@pytest.fixture(params=BREAKERS, ids=lambda f: f.__name__)
def broken(request, pristine, tmp_path):
    root, data = _copy(pristine, tmp_path)
    victim = data.cases("test")[1]  # the second test case: the first is evaluated before it
    expected = request.param(root, data, victim)
    return request.param, root, victim, expected


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# -- through the API ------------------------------------------------------------------------
def test_read_and_cases_name_case_and_file(broken):
    breaker, root, victim, expected = broken
    data = BraTS18(root)
    if breaker in CASE_LEVEL:
        case = {c.case_id: c for c in data.cases("test")}[victim.case_id]
        with pytest.raises(DataError) as error:
            data.read(case)
        assert error.value.case == victim.case_id
        assert str(error.value.path).endswith(expected.file)
        assert f"case {victim.case_id}, file " in str(error.value)
    else:
        with pytest.raises(DataError) as error:
            data.cases("test")
        if breaker is absent_case:
            assert f"case(s) of split 'test' are not on disk (first: {victim.case_id})" in \
                str(error.value)
        else:
            assert "split 'test' lists no cases" in str(error.value)
        assert str(root) in str(error.value)
    if breaker in CASE_LEVEL:
        assert expected.what in str(error.value)
    # the other splits are untouched
    for case in data.cases("train"):
        data.read(case)


# -- through `xhbench datasets check` -----------------------------------------------------
def test_check_reports_case_and_file(broken):
    _, root, _, expected = broken
    result = invoke("datasets", "check", "brats18", "--data-root", root)
    assert result.exit_code == 1, result.output
    problems = [line for line in result.output.splitlines()
                if line.startswith(("case ", "file "))]
    assert len(problems) == 1, result.output
    assert problems[0].startswith(expected.line), (problems[0], expected.line)
    assert "1 problem(s)" in result.output


def test_check_lists_every_problem_at_once(pristine, tmp_path):
    root, data = _copy(pristine, tmp_path)
    train, val, test = data.cases("train"), data.cases("val"), data.cases("test")
    expected = [
        # three problems in one case: each is listed, not only the first read() meets
        missing_modality(root, data, train[0]),
        nan_voxels(root, data, train[0]),
        unexpected_label(root, data, train[0]),
        truncated(root, data, train[1]),
        shape_mismatch(root, data, train[1]),
        affine_mismatch(root, data, val[0]),
        absent_case(root, data, test[0]),
    ]
    manifest = json.loads((root / PHANTOM_MANIFEST).read_text())
    manifest["splits"]["val"] = []
    (root / PHANTOM_MANIFEST).write_text(json.dumps(manifest))
    expected.append(Broken(None, PHANTOM_MANIFEST, "split 'val' lists no cases"))
    manifest["splits"]["train"].append(manifest["splits"]["test"][1])  # train/test leak
    (root / PHANTOM_MANIFEST).write_text(json.dumps(manifest))
    expected.append(Broken(test[1].case_id, "", "in both split 'train' and split 'test'"))

    result = invoke("datasets", "check", "brats18", "--data-root", root)
    assert result.exit_code == 1
    lines = [l for l in result.output.splitlines() if l.startswith(("case ", "file "))]
    for item in expected:
        start = item.line if item.file else f"case {item.case}: {item.what}"
        assert sum(line.startswith(start) for line in lines) == 1, (start, result.output)
    assert len(lines) == len(expected), result.output
    assert f"{len(expected)} problem(s) in 5 case(s)" in result.output

    report = json.loads(invoke("datasets", "check", "brats18", "--data-root", root,
                               "--json").output)
    assert len(report["problems"]) == len(expected)
    assert {p["case"] for p in report["problems"]} == {
        train[0].case_id, train[1].case_id, val[0].case_id, test[0].case_id, test[1].case_id,
        None}


def test_check_one_split_only_reads_that_split(pristine, tmp_path):
    root, data = _copy(pristine, tmp_path)
    nan_voxels(root, data, data.cases("train")[0])
    expected = truncated(root, data, data.cases("test")[0])
    result = invoke("datasets", "check", "brats18", "--data-root", root, "--split", "test")
    assert result.exit_code == 1
    assert expected.line in result.output and "1 problem(s) in 1 case(s)" in result.output


# -- through `xhbench run` ----------------------------------------------------------------
def test_run_fails_with_one_line_naming_case_and_file(broken, entry_points, tmp_path):
    breaker, root, victim, expected = broken
    entry_points("fake", fake_method_plugin())
    result = invoke("run", "--task", "brats18_missing", "--method", "fake", "--profile",
                    "smoke", "--data-root", root, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    if breaker is empty_split:
        assert "split 'test' lists no cases" in errors[0]
    else:
        assert f"case {victim.case_id}" in errors[0] or victim.case_id in errors[0]
    if breaker in CASE_LEVEL:
        assert f"case {victim.case_id}, file " in errors[0]
        assert errors[0].endswith(expected.what) or expected.what in errors[0]
        assert Path(expected.file).name in errors[0]


def test_bad_training_case_fails_the_run_with_one_line(pristine, entry_points, tmp_path):
    root, data = _copy(pristine, tmp_path)
    expected = missing_modality(root, data, data.cases("train")[1])
    result = invoke("run", "--task", "brats18_missing", "--method", "swinunetr", "--profile",
                    "smoke", "--data-root", root, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "Traceback" not in result.output
    assert len(errors) == 1, result.output
    assert f"case {expected.case}, file " in errors[0] and expected.file in errors[0]


def test_base_check_problem_names_case_once(pristine, tmp_path):
    root, data = _copy(pristine, tmp_path)
    victim = data.cases("test")[0]
    nan_voxels(root, data, victim)
    (problem,) = BraTS18(root).check()
    assert str(problem).count(f"case {victim.case_id}") == 1


def test_dataset_check_lists_the_same_problems_as_the_cli(pristine, tmp_path):
    root, data = _copy(pristine, tmp_path)
    case = data.cases("train")[0]
    expected = [nan_voxels(root, data, case), unexpected_label(root, data, case)]
    with pytest.raises(DataError, match=expected[0].what):  # read() stops at the first
        BraTS18(root).read(case)
    problems = BraTS18(root).check()  # every problem of the case, not only the first
    assert [(p.case, _rel(root, p.path)) for p in problems] == \
        [(item.case, item.file) for item in expected]
    assert all(item.what in p.what for p, item in zip(problems, expected))
    report = json.loads(invoke("datasets", "check", "brats18", "--data-root", root,
                               "--json").output)
    assert [(p["case"], p["file"], p["what"]) for p in report["problems"]] == \
        [(p.case, _rel(root, p.path), p.what) for p in problems]
