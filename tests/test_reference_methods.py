"""Reference rows that need no training: identity, histmatch (transfer) and threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from skimage.exposure import match_histograms

from xhbench.cli import cli
from xhbench.errors import ConfigError, UsageError
from xhbench.harness import runner
from xhbench.harness.config import resolve
from xhbench.results import find_runs
from xhbench.methods.reference import HistMatch, Identity, match_to_template, quantile_template
from xhbench.plugins import get_plugins
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
NAMES = ("T1", "T2")
SYN = TaskSpec("syn", "synthesis", NAMES, NAMES)
SEG_TASKS = ("autopet_seg", "brats18_missing")
TRANSFER_TASKS = ("autopet_transfer", "brats23_transfer", "hnscc_nsclc_transfer")


def build(method_cls, spec=SYN, profile="smoke", **overrides):
    config = resolve(method_cls.name, method_cls.Config, method_cls.profiles, profile, {},
                     {k: str(v) for k, v in overrides.items()})
    return method_cls(config, spec, CPU)


@pytest.mark.parametrize("name", ["identity", "histmatch"])
def test_transfer_references_are_registered_for_transfer_tasks_only(name):
    registry = get_plugins().registry
    supported = registry.tasks_supported_by(registry.get("method", name))
    assert set(TRANSFER_TASKS) <= set(supported)
    assert not set(SEG_TASKS) & set(supported)
    with pytest.raises(UsageError, match="does not support task 'brats18_missing'"):
        runner.plan(runner.RunRequest(task="brats18_missing", method=name, out="unused"))


def test_identity_predicts_the_source_in_every_target_channel():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 5, 6, 7)).astype(np.float32)
    image[0] = 0  # zero-filled missing channel
    prediction = build(Identity).predict(image, (False, True))
    assert prediction.shape == (2, 5, 6, 7)
    np.testing.assert_array_equal(prediction[0], image[1])
    np.testing.assert_array_equal(prediction[1], image[1])
    with pytest.raises(ConfigError, match="one source"):
        build(Identity).predict(image, (True, True))


def test_transfer_references_refuse_segmentation_specs():
    seg = TaskSpec("seg", "segmentation", NAMES, ("background", "x"))
    for method_cls in (Identity, HistMatch):
        with pytest.raises(ConfigError, match="synthesis task"):
            build(method_cls, spec=seg)


def test_quantile_mapping_equals_skimage_match_histograms():
    rng = np.random.default_rng(1)
    source = rng.gamma(2.0, size=(9, 10, 11)).round(2)  # ties, as in real volumes
    template = rng.normal(3.0, 0.5, size=(8, 8, 8)).round(2)
    ours = match_to_template(source, *quantile_template(template.ravel(), points=10_000))
    np.testing.assert_allclose(ours, match_histograms(source, template), atol=1e-9)


def test_thinned_template_keeps_the_ends_and_stays_close_to_skimage():
    rng = np.random.default_rng(2)
    source, template = rng.normal(size=4000), rng.exponential(size=20_000)
    values, quantiles = quantile_template(template, points=HistMatch.Config.template_points)
    assert len(values) == 4096 and values[0] == template.min() and values[-1] == template.max()
    assert quantiles[-1] == 1.0
    ours = match_to_template(source, values, quantiles)
    reference = match_histograms(source, template)
    error = np.abs(ours - reference) / template.std()
    assert np.percentile(error, 99) < 0.005 and error.mean() < 0.001  # the far tail is coarser


def samples(n: int, edge: int = 12, seed: int = 0):
    """Training samples as the synthesis transforms build them (target = all channels)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        target = torch.stack([torch.rand(edge, edge, edge, generator=g) * 4 - 1,
                              torch.randn(edge, edge, edge, generator=g) * 0.5 + 2])
        foreground = torch.zeros(1, edge, edge, edge)
        foreground[:, 2:-2, 2:-2, 2:-2] = 1
        target = (target * foreground).round(decimals=2)
        out.append({"target": target, "image": target * torch.tensor([1.0, 0])[:, None, None, None],
                    "foreground": foreground, "available": torch.tensor([True, False])})
    return out


def test_histmatch_learns_the_training_targets_foreground_histogram():
    """One crop per case covering it: the pooled template is every training case's target
    foreground, and the mapping equals skimage's match against those voxels."""
    train = samples(3)
    method = build(HistMatch, template_points=100_000, crops_per_case=1)
    history = method.fit(train, None, lambda _: None)
    assert history == {"crops": 3, "voxels": {"T1": 3 * 8**3, "T2": 3 * 8**3}}
    pooled_t2 = np.concatenate([s["target"][1][s["foreground"][0] > 0].numpy() for s in train])

    rng = np.random.default_rng(3)
    source = np.zeros((7, 8, 9), dtype=np.float32)
    source[1:-1, 1:-1, 1:-1] = rng.normal(size=(5, 6, 7)).round(2) + 0.5
    image = np.stack([source, np.zeros_like(source)])
    prediction = method.predict(image, (True, False))
    inside = source != 0
    expected = match_histograms(source[inside], pooled_t2)
    np.testing.assert_allclose(prediction[1][inside], expected, atol=1e-5)
    assert (prediction[:, ~inside] == 0).all()

    restored = build(HistMatch)
    restored.load_state_dict(method.state_dict())
    np.testing.assert_array_equal(restored.predict(image, (True, False)), prediction)
    with pytest.raises(KeyError, match="lacks T2"):
        build(HistMatch).load_state_dict({"T1": method.state_dict()["T1"]})


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return tmp_path_factory.mktemp("reference_runs")


def test_identity_row_on_brats23_transfer_is_perfect_on_same_modality_pairs(results):
    result = invoke("run", "--task", "brats23_transfer", "--method", "identity", "--profile",
                    "smoke", "--out", str(results))
    assert result.exit_code == 0, result.output
    (run,) = [r for r in find_runs(results, "brats23_transfer")[0]
              if r.summary["method"] == "identity"]
    rows = run.cases().set_index(["target", "metric"])["value"]
    assert (rows.loc[("T1->T1", "nmse")] == 0).all()
    assert list(rows.loc[("T1->T1", "ssim")]) == pytest.approx([1.0, 1.0])
    assert (rows.loc[("T1->T2", "ssim")] < 0.99).all()
    board = invoke("leaderboard", "--task", "brats23_transfer", "--results", str(results),
                   "--table", "table1")
    assert board.exit_code == 0, board.output
    assert any(line.startswith("| identity") for line in board.output.splitlines())


def test_histmatch_beats_identity_on_autopet_ct_to_pet(results):
    for method in ("identity", "histmatch"):
        result = invoke("run", "--task", "autopet_transfer", "--method", method, "--profile",
                        "smoke", "--out", str(results))
        assert result.exit_code == 0, result.output
    runs = {r.summary["method"]: r.cases() for r in find_runs(results, "autopet_transfer")[0]}

    def ct_to_pet(method: str, metric: str) -> float:
        rows = runs[method]
        return rows[(rows["target"] == "CT->PET") & (rows["metric"] == metric)]["value"].mean()

    assert ct_to_pet("histmatch", "nmse") < ct_to_pet("identity", "nmse")
    assert ct_to_pet("histmatch", "psnr") > ct_to_pet("identity", "psnr")


# --- threshold -------------------------------------------------------------------------

from xhbench.methods.threshold import Threshold  # noqa: E402

PETCT = TaskSpec("pet", "segmentation", ("PET", "CT"), ("background", "lesion"),
                 windows={"PET": (0.0, 20.0), "CT": (-1000.0, 1000.0)})
BRATS = TaskSpec("b18", "segmentation", ("flair", "t1ce", "t1", "t2"),
                 ("background", "ncr", "ed", "et"))


def test_threshold_is_registered_for_the_segmentation_tasks_it_has_a_rule_for():
    registry = get_plugins().registry
    assert set(registry.tasks_supported_by(registry.get("method", "threshold"))) == set(SEG_TASKS)
    with pytest.raises(ConfigError, match="no rule"):
        build(Threshold, spec=TaskSpec("x", "segmentation", ("T1",), ("background", "x")))


def test_pet_rule_is_suv_at_least_2_5_inside_the_body():
    suv = np.zeros((12, 12, 12))
    ct = np.full((12, 12, 12), -1000.0)  # air
    ct[2:10, 2:10, 2:10] = 40.0  # body: a soft-tissue cube
    suv[2:10, 2:10, 2:10] = 1.0
    suv[4:7, 4:7, 4:7] = 6.0  # lesion
    suv[8, 8, 8], suv[8, 3, 3] = 2.5, 2.49  # on and just below the rule
    suv[0, 0, 0] = 9.0  # hot voxel in the air: outside the body
    image = np.stack([np.clip(suv / 20, 0, 1), np.clip((ct + 1000) / 2000, 0, 1)])
    method = build(Threshold, spec=PETCT)
    assert method.fit([], None, lambda _: None)["steps"] == 0
    prediction = method.predict(image.astype(np.float32), (True, True))
    expected = (suv >= 2.5) & (ct > -500)
    np.testing.assert_array_equal(prediction == 1, expected)
    assert prediction[8, 8, 8] == 1 and prediction[8, 3, 3] == 0 and prediction[0, 0, 0] == 0
    pet_only = TaskSpec("pet", "segmentation", ("PET",), ("background", "lesion"),
                        windows={"PET": (0.0, 20.0)})
    alone = build(Threshold, spec=pet_only).predict(image[:1].astype(np.float32), (True,))
    np.testing.assert_array_equal(alone == 1, suv >= 2.5)  # no CT: no body restriction


def brats_samples(n: int, edge: int = 12, seed: int = 0):
    """Brain crops whose tumour is FLAIR-bright in [1.2, 3] and whose brain is in [-1, 2]:
    the pooled Dice depends on the threshold in between."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        brain = np.zeros((edge,) * 3, dtype=bool)
        brain[1:-1, 1:-1, 1:-1] = True
        label = np.zeros((edge,) * 3, dtype=np.int64)
        label[3:8, 3:8, 3:8] = rng.choice([1, 2, 3], size=(5, 5, 5))
        flair = np.where(label > 0, rng.uniform(1.2, 3.0, brain.shape),
                         rng.uniform(-1.0, 2.0, brain.shape)) * brain
        image = np.stack([flair, *rng.normal(size=(3, *brain.shape)) * brain]).astype(np.float32)
        out.append({"image": torch.from_numpy(image), "label": torch.from_numpy(label[None]),
                    "foreground": torch.from_numpy(brain[None].astype(np.float32)),
                    "available": torch.ones(4, dtype=torch.bool)})
    return out


def test_flair_rule_learns_the_threshold_with_the_best_pooled_training_dice():
    train = brats_samples(3)
    method = build(Threshold, spec=BRATS)
    history = method.fit(train, None, lambda _: None)
    # brute force over the same grid on the pooled voxels
    flair = np.concatenate([s["image"][0][s["foreground"][0] > 0].numpy() for s in train])
    tumour = np.concatenate([(s["label"][0] > 0)[s["foreground"][0] > 0].numpy() for s in train])
    grid = np.arange(-1.0, 6.0 + 0.025, 0.05)
    dice = [2 * ((flair >= t) & tumour).sum() / ((flair >= t).sum() + tumour.sum()) for t in grid]
    assert history["flair_threshold"] == pytest.approx(grid[int(np.argmax(dice))])
    assert history["train_dice"] == pytest.approx(max(dice))
    assert 1.0 < history["flair_threshold"] < 2.2

    image = train[0]["image"].numpy()
    prediction = method.predict(image, (True, True, False, False))
    wt = (image[0] >= history["flair_threshold"]) & (image[0] != 0)
    np.testing.assert_array_equal(prediction, np.where(wt, 2, 0))  # edema class only
    assert not method.predict(image, (False, True, True, True)).any()  # no FLAIR: no tumour
    restored = build(Threshold, spec=BRATS)
    restored.load_state_dict(method.state_dict())
    np.testing.assert_array_equal(restored.predict(image, (True,) * 4), prediction)


@pytest.mark.parametrize("task, table", [("autopet_seg", "table5"),
                                         ("brats18_missing", "table3")])
def test_threshold_rows_in_segmentation_leaderboards(results, task, table):
    result = invoke("run", "--task", task, "--method", "threshold", "--profile", "smoke",
                    "--out", str(results))
    assert result.exit_code == 0, result.output
    (run,) = [r for r in find_runs(results, task)[0] if r.summary["method"] == "threshold"]
    rows = run.cases()
    if task == "brats18_missing":
        no_flair = rows[rows["setting"].isin(["1", "2", "3"]) & (rows["target"] == "WT")]
        assert len(no_flair) and (no_flair["value"] < 1e-9).all()  # tumour present, none found
        assert run.summary["training"]["fit"]["crops"] >= 1
    board = invoke("leaderboard", "--task", task, "--results", str(results), "--table", table)
    assert board.exit_code == 0, board.output
    assert any(line.startswith("| threshold") for line in board.output.splitlines())
