"""``xhbench figures --results ROOT --task T``: transfer methods side by side, from two smoke
runs of the built-in references (identity copies the source, histmatch maps its
histogram), which keep the runs to seconds."""

from __future__ import annotations

import csv

import matplotlib.image
import numpy as np
import pytest
from click.testing import CliRunner

from xhbench.cli import cli
from xhbench.harness.comparison import comparison_figure_size, comparison_panels, latest_runs
from xhbench.harness.figures import load_run, mid_slice

PAIRS = "T1->T2,T2->FLAIR"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    for method in ("identity", "histmatch"):
        result = invoke("run", "--task", "brats23_transfer", "--method", method, "--profile",
                        "smoke", "--set", f"task.pairs={PAIRS}", "--out", str(root))
        assert result.exit_code == 0, result.output
    return root


def scored(run, case: str, pair: str, metric: str) -> float:
    with run.file("cases.csv").open() as handle:
        (value,) = [float(row["value"]) for row in csv.DictReader(handle)
                    if (row["case"], row["target"], row["metric"]) == (case, pair, metric)]
    return value


def test_one_png_per_case_and_pair_with_a_column_per_method(root):
    result = invoke("figures", "--results", str(root), "--task", "brats23_transfer",
                    "--cases", "2")
    assert result.exit_code == 0, result.output
    out = root / "figures" / "brats23_transfer"  # the default --out
    paths = sorted(out.glob("*.png"))
    assert sorted(result.output.split()) == sorted(str(path) for path in paths)
    cases = sorted({path.name.split("_T")[0] for path in paths})
    assert len(cases) == 2
    assert sorted(path.name for path in paths) == sorted(
        f"{case}_{pair}.png" for case in cases for pair in ("T1-to-T2", "T2-to-FLAIR"))
    width, height = comparison_figure_size(2)
    for path in paths:
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[:2] == (height, width)
        assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_panels_are_source_real_target_then_each_methods_prediction(root):
    runs = latest_runs(root, "brats23_transfer")
    assert list(runs) == ["histmatch", "identity"]  # by name without --methods
    loaded = {name: load_run(run.path) for name, run in runs.items()}
    case_id, z, panels = comparison_panels(loaded, 0, ("T1", "T2"))
    assert [panel.title.split("\n")[0] for panel in panels] == [
        "source T1", "real T2", "histmatch", "identity"]
    task = loaded["identity"][0]
    item = task.prepare(task.data.read(task.test_cases()[0]))
    assert item.case_id == case_id and z == mid_slice(item.foreground)
    fg, t1, t2 = item.foreground, item.reference[0], item.reference[2]
    low, high = t2[fg].min(), t2[fg].max()
    # identity predicts the source: its column is T1 shown in T2's foreground range
    expected = np.where(fg, np.clip((t1 - low) / (high - low), 0, 1), 0)[..., z]
    np.testing.assert_allclose(panels[3].image, expected, atol=1e-6)
    np.testing.assert_allclose(panels[1].image,
                               np.where(fg, (t2 - low) / (high - low), 0)[..., z], atol=1e-6)
    assert np.abs(panels[2].image - panels[3].image).max() > 0.05  # histmatch differs
    # the labels carry the scores the runs' evaluation wrote
    for panel, name in zip(panels[2:], ("histmatch", "identity")):
        psnr = scored(runs[name], case_id, "T1->T2", "psnr")
        assert f"PSNR {psnr:.2f}," in panel.title


def test_methods_order_pairs_and_refusals(root, tmp_path):
    result = invoke("figures", "--results", str(root), "--task", "brats23_transfer",
                    "--methods", "identity,histmatch", "--pairs", "t2->flair", "--cases", "1",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert [p.name.split("_", 1)[1] for p in tmp_path.glob("*.png")] == ["T2-to-FLAIR.png"]
    assert list(latest_runs(root, "brats23_transfer", ["identity", "histmatch"])) == [
        "identity", "histmatch"]
    for args, message in [
            (("--methods", "identity,cut"), "for cut"),
            (("--pairs", "T1->FLAIR"), "does not score T1->FLAIR"),
            (("--run", str(root)), "either --run"),
    ]:
        result = invoke("figures", "--results", str(root), "--task", "brats23_transfer",
                        "--out", str(tmp_path), *args)
        assert result.exit_code == 2 and message in result.output, result.output
    result = invoke("figures", "--results", str(root))
    assert result.exit_code == 2 and "--results needs --task" in result.output
    result = invoke("figures", "--results", str(tmp_path), "--task", "brats23_transfer")
    assert result.exit_code == 2 and "no finished run" in result.output
