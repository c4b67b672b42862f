"""``xhbench datasets``: phantom roots that read like real data, check, list."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import fake_method_plugin

from xhbench.cli import cli
from xhbench.cli.datasets import allocate_cases, phantom_split_sizes
from xhbench.datasets import PHANTOM_MANIFEST
from xhbench.datasets.brats18 import BraTS18
from xhbench.results import find_runs

SIZE = "24"
SPLITS = ["--train", "2", "--val", "1", "--test", "2"]


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "brats18"
    result = CliRunner().invoke(cli, ["datasets", "phantom", "brats18", "--out", str(out),
                                      "--size", SIZE, "--seed", "3", *SPLITS])
    assert result.exit_code == 0, result.output
    return out


# -- phantom ----------------------------------------------------------------------------
def test_phantom_root_is_the_real_layout_plus_manifest(phantom_root):
    assert sorted(p.name for p in phantom_root.iterdir()) == ["HGG", "LGG", PHANTOM_MANIFEST]
    assert not Path(str(phantom_root) + ".lock").exists()
    manifest = json.loads((phantom_root / PHANTOM_MANIFEST).read_text())
    assert manifest["dataset"] == "brats18" and manifest["seed"] == 3 and manifest["size"] == 24
    assert {k: len(v) for k, v in manifest["splits"].items()} == {"train": 2, "val": 1,
                                                                   "test": 2}
    data = BraTS18(phantom_root)
    assert data.origin == "phantom"
    volume = data.read(data.cases("test")[0])
    assert volume.image.shape == (4, 24, 24, 24)


def test_phantom_matches_the_cached_phantom_byte_for_byte(phantom_root, tmp_path):
    cached = BraTS18.open(None, cache_dir=tmp_path, seed=3, size=24,
                          cases_per_split={"train": 2, "val": 1, "test": 2})
    assert files_of(cached.root) == files_of(phantom_root)


def test_same_seed_same_bytes_other_seed_other_images(phantom_root, tmp_path):
    again = tmp_path / "again"
    assert invoke("datasets", "phantom", "brats18", "--out", again, "--size", SIZE,
                  "--seed", "3", *SPLITS).exit_code == 0
    assert files_of(again) == files_of(phantom_root)
    other = tmp_path / "other"
    assert invoke("datasets", "phantom", "brats18", "--out", other, "--size", SIZE,
                  "--seed", "4", *SPLITS).exit_code == 0
    differ = [name for name, data in files_of(other).items()
              if name.endswith("_t1.nii.gz") and data != files_of(phantom_root)[name]]
    assert differ


def test_cases_are_shared_in_proportion_to_the_real_splits(tmp_path):
    # brats18 ships 199 / 29 / 57 ids (M2FTrans split 1)
    assert phantom_split_sizes(BraTS18) == {"train": 199.0, "val": 29.0, "test": 57.0}
    assert allocate_cases(3, phantom_split_sizes(BraTS18)) == {"train": 1, "val": 1, "test": 1}
    assert allocate_cases(8, phantom_split_sizes(BraTS18)) == {"train": 5, "val": 1, "test": 2}
    assert allocate_cases(20, phantom_split_sizes(BraTS18)) == {"train": 14, "val": 2, "test": 4}
    for total in range(3, 40):
        counts = allocate_cases(total, phantom_split_sizes(BraTS18))
        assert sum(counts.values()) == total and min(counts.values()) >= 1
    result = invoke("datasets", "phantom", "brats18", "--out", tmp_path / "p", "--size", "16",
                    "--cases", "4")
    assert result.exit_code == 0, result.output
    assert "train 2, val 1, test 1" in result.output


@pytest.mark.parametrize("args, message", [
    (["--cases", "4", "--train", "2"], "either --cases or --train/--val/--test"),
    (["--train", "2", "--test", "1"], "brats18 needs a case count for every split: missing "
                                      "--val"),
    (["--cases", "2"], "at least one case per split"),
    (["--train", "0", "--val", "1", "--test", "1"], "0 is not in the range"),
])
def test_phantom_usage_errors_are_exit_code_2(tmp_path, args, message):
    result = invoke("datasets", "phantom", "brats18", "--out", tmp_path / "p", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "p").exists()


def test_phantom_refuses_a_non_empty_folder_and_an_unknown_data_set(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    result = invoke("datasets", "phantom", "brats18", "--out", tmp_path / "p")
    assert result.exit_code == 2 and "not empty" in result.output
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["keep.txt"]
    result = invoke("datasets", "phantom", "brats81", "--out", tmp_path / "q")
    assert result.exit_code == 2 and "Did you mean: brats18" in result.output


def test_run_reads_a_phantom_root_like_real_data(phantom_root, entry_points, tmp_path):
    entry_points("fake", fake_method_plugin())
    result = invoke("run", "--task", "brats18_missing", "--method", "fake", "--profile",
                    "smoke", "--data-root", phantom_root, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    (run,), _ = find_runs(tmp_path / "out", "brats18_missing")
    assert run.summary["data"]["origin"] == "phantom"  # the manifest says so
    assert run.summary["data"]["n_cases"] == 2
    manifest = json.loads((phantom_root / PHANTOM_MANIFEST).read_text())
    assert set(run.cases()["case"]) == set(manifest["splits"]["test"])


# -- check ------------------------------------------------------------------------------
def test_check_passes_on_a_generated_phantom(phantom_root):
    result = invoke("datasets", "check", "brats18", "--data-root", phantom_root)
    assert result.exit_code == 0, result.output
    assert "(phantom): 5 case(s) on disk, 5 checked; splits: train 2, val 1, test 2" in \
        result.output
    assert result.output.strip().endswith("OK: no problems")


def test_check_one_split_and_json(phantom_root):
    result = invoke("datasets", "check", "brats18", "--data-root", phantom_root, "--split",
                    "test", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["cases_checked"] == 2 and report["splits"] == {"test": 2}
    assert report["problems"] == [] and report["origin"] == "phantom"
    result = invoke("datasets", "check", "brats18", "--data-root", phantom_root, "--split",
                    "nope")
    assert result.exit_code == 1 and "no split 'nope'; known: test, train, val" in result.output


def test_check_without_manifest_uses_the_shipped_split(phantom_root, tmp_path):
    """A copy without the manifest is real data: the 285-id M2FTrans split applies."""
    real = tmp_path / "real"
    shutil.copytree(phantom_root, real)
    (real / PHANTOM_MANIFEST).unlink()
    result = invoke("datasets", "check", "brats18", "--data-root", real, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["origin"] == "real"
    assert report["splits"] == {"train": 199, "val": 29, "test": 57}
    absent = [p for p in report["problems"] if "but not on disk" in p["what"]]
    assert len(absent) == 285 - 5 and len(report["problems"]) == len(absent)
    assert absent[0]["file"] == "xhbench/data/splits/brats18/train.txt"


def test_check_needs_a_data_root(tmp_path):
    result = invoke("datasets", "check", "brats18")
    assert result.exit_code == 2 and "--data-root is required" in result.output
    result = invoke("datasets", "check", "brats18", "--data-root", tmp_path / "absent")
    assert result.exit_code == 2 and "does not exist" in result.output  # a usage error
    result = invoke("datasets", "check", "brats18", "--data-root", tmp_path)
    assert result.exit_code == 1 and "no HGG/ or LGG/ folder" in result.output


def test_datasets_list_aliases_list_datasets():
    assert invoke("datasets", "list").output == invoke("list", "datasets").output
    assert "brats18" in {row["name"] for row in
                         json.loads(invoke("datasets", "list", "--json").output)}


@pytest.mark.parametrize("dataset, message", [
    ("autopet", "no patient folders here (expected the autoPET layout "
                "[FDG-PET-CT-Lesions/]<patient>/<study>/{CTres,SUV,PET,SEG}.nii.gz)"),
    ("hnscc", "no case folders here (expected <case>/{nac_pet,ac_pet,ct}.nii.gz folders, as "
              "xhbench datasets convert-tcia writes them)"),
    ("nsclc", "no case folders here (expected <case>/{nac_pet,ac_pet,ct}.nii.gz folders"),
])
def test_an_empty_pet_ct_root_names_the_layout_it_expects(tmp_path, dataset, message):
    result = invoke("datasets", "check", dataset, "--data-root", tmp_path)
    assert result.exit_code == 1 and f"file .: {message}" in result.output
    assert "lists no cases" not in result.output
