"""Protocol details that a wrong implementation would get past looser tests.

Each test here kills a mutant that survived the suite once (docs/testing.md lists them):
the full subset order, 18-connectivity in the task's own scoring call, Wilcoxon's zero
handling, Holm per family, the verdict from Holm-corrected p, the bootstrap's confidence
level, the metrics' directions, and brats18's z-scoring over the brain only.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xhbench import metrics
from xhbench.datasets.base import Volume
from xhbench.leaderboard import build_leaderboard
from xhbench.leaderboard.paired import (_verdict, bootstrap_ci, holm, paired_comparison,
                                        wilcoxon_p)
from xhbench.metrics import autopet
from xhbench.tasks.autopet_seg import AutoPETSeg
from xhbench.tasks.base import EvalItem, Setting
from xhbench.tasks.brats18_missing import MASKS, preprocess

from test_paired import BASE, CASES, RANKS, make_run, only


# -- the 15 availability masks -----------------------------------------------------------
# dyh127/RFNet train.py (and M2FTrans_v1/train.py): ``masks`` over [flair, t1ce, t1, t2] and
# ``mask_name``, transcribed in the code's order (shared/notes/protocols.md).
RFNET_MASKS = [
    ("t2", "FFFT"), ("t1ce", "FTFF"), ("t1", "FFTF"), ("flair", "TFFF"),
    ("t1ce+t2", "FTFT"), ("t1ce+t1", "FTTF"), ("flair+t1", "TFTF"), ("t1+t2", "FFTT"),
    ("flair+t2", "TFFT"), ("flair+t1ce", "TTFF"), ("flair+t1ce+t1", "TTTF"),
    ("flair+t1+t2", "TFTT"), ("flair+t1ce+t2", "TTFT"), ("t1ce+t1+t2", "FTTT"),
    ("all", "TTTT"),
]


def test_all_fifteen_masks_in_the_rfnet_order_with_ids_from_one():
    got = [(m.id, m.name, m.available) for m in MASKS]
    expected = [(str(i), name, tuple(c == "T" for c in code))
                for i, (name, code) in enumerate(RFNET_MASKS, start=1)]
    assert got == expected
    # names spell the available modalities in channel order [flair, t1ce, t1, t2]
    channels = ("flair", "t1ce", "t1", "t2")
    for mask in MASKS[:-1]:
        assert mask.name == "+".join(c for c, on in zip(channels, mask.available) if on)


# -- autoPET lesion components through the task's own scoring call ----------------------
def _score_autopet(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    task = object.__new__(AutoPETSeg)  # score() reads only its arguments
    item = EvalItem("case0", np.zeros((2, *ref.shape), np.float32), ref, (2.0, 2.0, 3.0))
    rows = task.score(pred.astype(np.uint8), item, Setting("1", "PET+CT", (True, True)))
    return {row["metric"]: row["value"] for row in rows}


def test_autopet_seg_score_counts_a_corner_touching_voxel_as_a_false_positive():
    # val_script.py labels components with cc3d's 18-connectivity: a predicted voxel that
    # touches the detected lesion only at a corner is a component of its own that overlaps
    # no reference voxel, so it counts as false-positive volume (one 12 mm^3 voxel).
    ref = np.zeros((6, 6, 6), bool)
    ref[2, 2, 2] = True
    pred = ref.copy()
    pred[3, 3, 3] = True  # corner neighbour of the hit
    values = _score_autopet(pred, ref)
    assert values["fpv"] == pytest.approx(0.012)
    assert values["fnv"] == 0.0
    pred_edge = ref.copy()
    pred_edge[3, 3, 2] = True  # edge neighbour: part of the hit
    assert _score_autopet(pred_edge, ref)["fpv"] == 0.0


def test_autopet_seg_score_counts_a_corner_touching_reference_lesion_as_missed():
    ref = np.zeros((6, 6, 6), bool)
    ref[2, 2, 2] = ref[3, 3, 3] = True  # two lesions under 18-connectivity
    pred = np.zeros_like(ref)
    pred[2, 2, 2] = True
    assert _score_autopet(pred, ref)["fnv"] == pytest.approx(0.012)


# -- paired statistics ---------------------------------------------------------------------
def test_wilcoxon_drops_zero_differences_before_ranking():
    # zeros dropped (Wilcoxon's original rule): n = 8 non-zero differences with distinct
    # magnitudes, only the smallest negative -> W- = 1, exact two-sided p = 2 * 2 / 2^8.
    diff = np.r_[0.0, 0.0, -0.01, np.arange(2, 9) * 0.01]
    assert wilcoxon_p(diff) == pytest.approx(2 * 2 / 2**8)
    assert wilcoxon_p(diff) == pytest.approx(
        stats.wilcoxon(diff, zero_method="wilcox", method="exact").pvalue)
    # Pratt's rule (zeros ranked, then dropped) gives another exact value on the same data
    assert stats.wilcoxon(diff, zero_method="pratt", method="exact").pvalue != \
        pytest.approx(wilcoxon_p(diff))


def test_bootstrap_interval_is_the_95_percent_percentile_interval_of_scipy():
    diff = np.random.default_rng(7).normal(0.3, 1.0, size=20)
    reference = stats.bootstrap((diff,), np.mean, confidence_level=0.95, method="percentile",
                                n_resamples=40_000, random_state=np.random.default_rng(1))
    low, high = bootstrap_ci(diff, resamples=40_000, seed=1)
    ci = reference.confidence_interval
    # Monte Carlo error at 40k resamples is ~0.005 here; a 90% interval is ~0.07 narrower
    assert low == pytest.approx(ci.low, abs=0.02)
    assert high == pytest.approx(ci.high, abs=0.02)


def test_paired_comparison_reports_95_percent_intervals_by_default(tmp_path):
    make_run(tmp_path, "ref", _values({"WT": BASE}))
    make_run(tmp_path, "new", _values({"WT": BASE + RANKS}))
    comparison = paired_comparison(build_leaderboard(tmp_path, "toy_seg"), "ref",
                                   resamples=20_000)
    assert comparison.confidence == 0.95
    row = only(comparison.table, method="new")
    low, high = bootstrap_ci(RANKS, resamples=20_000, seed=comparison.seed, confidence=0.95)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))


def _values(by_target: dict[str, np.ndarray], metric: str = "dice") -> dict:
    return {(case, "1", target, metric): float(value)
            for target, numbers in by_target.items() for case, value in zip(CASES, numbers)}


def test_holm_families_are_per_target_and_metric(tmp_path):
    # one method against the reference on two targets and two metrics: each (target,
    # metric) is a family of one comparison, so Holm leaves p as it is. Pooled over the four
    # it would multiply the smallest p by 4.
    make_run(tmp_path, "ref", {**_values({"WT": BASE, "TC": BASE}),
                               **_values({"WT": BASE, "TC": BASE}, "nmse")})
    make_run(tmp_path, "new", {**_values({"WT": BASE + RANKS, "TC": BASE + RANKS}),
                               **_values({"WT": BASE - RANKS, "TC": BASE - RANKS}, "nmse")})
    table = paired_comparison(build_leaderboard(tmp_path, "toy_seg"), "ref").table
    assert len(table) == 4
    assert list(table["p"]) == pytest.approx([2 / 2**8] * 4)
    assert list(table["p_holm"]) == list(table["p"])
    assert set(table["verdict"]) == {"better"}


def test_verdict_uses_the_holm_corrected_p(tmp_path):
    # three methods, each with ranks 1 and 2 negative: raw exact p = 2 * 5 / 256 = 0.039 < 0.05
    # for each, Holm over the three: 3 * 0.039 = 0.117 for all -> not significant.
    make_run(tmp_path, "ref", _values({"WT": BASE}))
    sign = np.r_[-1, -1, np.ones(6)]
    for name in ("A", "B", "C"):
        make_run(tmp_path, name, _values({"WT": BASE + sign * RANKS}))
    table = paired_comparison(build_leaderboard(tmp_path, "toy_seg"), "ref").table
    assert list(table["p"]) == pytest.approx([0.0390625] * 3)
    assert list(table["p_holm"]) == pytest.approx([3 * 0.0390625] * 3)
    assert set(table["verdict"]) == {"n.s."}


# -- directions: each flag agrees with what a perfect prediction scores ------------------
def _better_of(metric_of, perfect, worse) -> bool:
    """True when the perfect prediction scores higher than the worse one."""
    return metric_of(perfect) > metric_of(worse)


def test_higher_is_better_agrees_with_perfect_predictions():
    rng = np.random.default_rng(0)
    ref = rng.uniform(0.2, 1.0, size=(16, 16, 16)).astype(np.float32)
    noisy = ref + rng.normal(0, 0.2, ref.shape).astype(np.float32)
    slightly = ref + rng.normal(0, 0.02, ref.shape).astype(np.float32)
    mask = np.zeros((16, 16, 16), bool)
    mask[4:12, 4:12, 4:12] = True
    wrong = np.zeros_like(mask)
    wrong[0:6, 0:6, 0:6] = True
    case_flags = {  # detection indicators on one positive and one negative case
        "tpr": lambda good: float(good),
        "fnr": lambda good: float(not good),
        "tnr": lambda good: float(good),
        "fpr": lambda good: float(not good),
    }
    observed = {
        "psnr": _better_of(lambda p: metrics.psnr(p, ref, data_range=1.0), slightly, noisy),
        "nmse": _better_of(lambda p: metrics.nmse(p, ref), slightly, noisy),
        "ssim": _better_of(lambda p: metrics.ssim(p, ref, data_range=1.0), slightly, noisy),
        "dice": _better_of(lambda p: metrics.dice(p, mask), mask, wrong),
        "et_postpro": _better_of(lambda p: metrics.dice(p, mask), mask, wrong),
        "hd95": _better_of(lambda p: metrics.hd95(p, mask), mask, wrong),
        "asd": _better_of(lambda p: metrics.average_surface_distance(p, mask), mask, wrong),
        # the BraTS package's lesion-wise scores follow its per-lesion Dice and HD95
        "lesionwise_dice": _better_of(lambda p: metrics.dice(p, mask), mask, wrong),
        "lesionwise_hd95": _better_of(lambda p: metrics.hd95(p, mask), mask, wrong),
        **{name: _better_of(flag, True, False) for name, flag in case_flags.items()},
    }
    assert set(metrics.HIGHER_IS_BETTER) == set(observed)
    assert metrics.HIGHER_IS_BETTER == observed


def test_autopet_directions_agree_with_perfect_predictions():
    ref = np.zeros((12, 12, 12), bool)
    ref[2:5, 2:5, 2:5] = True
    worse = np.zeros_like(ref)
    worse[2:4, 2:5, 2:5] = True  # part of the lesion found
    worse[8:10, 8:10, 8:10] = True  # and a stray component
    spacing = (2.0, 2.0, 3.0)
    perfect = autopet.lesion_case_metrics(ref, ref, spacing)
    degraded = autopet.lesion_case_metrics(worse, ref, spacing)
    directions = {name: perfect[name] > degraded[name]
                  for name in ("dice", "dice-", "fpv", "fnv")}
    empty = np.zeros_like(ref)
    lesion_free = autopet.lesion_case_metrics(empty, empty, spacing)
    false_alarm = autopet.lesion_case_metrics(worse, empty, spacing)
    missed = autopet.lesion_case_metrics(empty, ref, spacing)
    directions["tpr"] = perfect["tpr"] > missed["tpr"]
    directions["fnr"] = perfect["fnr"] > missed["fnr"]
    directions["tnr"] = lesion_free["tnr"] > false_alarm["tnr"]
    directions["fpr"] = lesion_free["fpr"] > false_alarm["fpr"]
    assert autopet.AUTOPET_HIGHER_IS_BETTER == directions


# -- brats18 preprocessing: z-scores over the brain, not the crop box -------------------
def test_brats18_z_scores_each_modality_over_the_brain_only():
    rng = np.random.default_rng(3)
    shape = (20, 20, 20)
    grid = np.indices(shape) - 9.5
    brain = (grid ** 2).sum(axis=0) < 8.0 ** 2  # a ball: its bounding box has corners outside
    image = np.zeros((4, *shape), np.float32)
    for channel, (mean, sd) in enumerate([(300, 40), (900, 120), (500, 60), (700, 90)]):
        image[channel][brain] = rng.normal(mean, sd, brain.sum())
    order = ("t1", "t1ce", "t2", "flair")  # on-disk order differs from the task's
    volume = Volume("ball", image[[2, 1, 3, 0]], None, np.eye(4), order)
    out, _ = preprocess(volume)
    box = tuple(slice(i.min(), i.max() + 1) for i in np.nonzero(brain))
    inside = brain[box]
    assert out.shape == (4, *inside.shape) and not inside.all()
    for channel in range(4):
        assert out[channel][inside].mean() == pytest.approx(0.0, abs=1e-5)
        assert out[channel][inside].std() == pytest.approx(1.0, abs=1e-5)
        assert (out[channel][~inside] == 0).all()
    # channel order [flair, t1ce, t1, t2]: the z-scores are those of the matching input
    for channel in range(4):
        values = image[channel][brain]
        expected = (values - values.mean()) / values.std()
        assert out[channel][inside] == pytest.approx(expected, abs=1e-4)


# -- statistics at their edges -------------------------------------------------------------
def test_bootstrap_defaults_and_degenerate_samples():
    diff = [0.1, 0.4, -0.2, 0.3]
    assert bootstrap_ci(diff) == bootstrap_ci(diff, resamples=10_000, seed=0, confidence=0.95)
    assert bootstrap_ci([0.3]) == (pytest.approx(0.3), pytest.approx(0.3))
    low, high = bootstrap_ci([])
    assert np.isnan(low) and np.isnan(high)


def test_holm_caps_adjusted_p_at_one():
    assert list(holm([0.8, 0.9])) == [1.0, 1.0]  # 2 * 0.8 = 1.6 -> 1
    assert list(holm([0.3, 0.9])) == pytest.approx([0.6, 0.9])


@pytest.mark.parametrize("mean_diff, p_holm, higher, verdict", [
    (0.2, 0.01, True, "better"), (0.2, 0.01, False, "worse"),
    (-0.2, 0.01, True, "worse"), (-0.2, 0.01, False, "better"),
    (0.2, 0.01, None, "differs"),  # direction unknown
    (0.2, 0.05, True, "n.s."),  # p_holm == alpha is not below it
    (0.0, 0.01, True, "n.s."), (float("nan"), 0.01, True, "n.s."),
    (0.2, float("nan"), True, "n.s."),
])
def test_verdict_rules(mean_diff, p_holm, higher, verdict):
    assert _verdict(mean_diff, p_holm, higher, 0.05) == verdict
