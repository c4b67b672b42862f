"""The reference rows' rules in detail (identity, histmatch, threshold): their messages,
boundaries and sampling, each value worked out by hand (written for the mutation audit of
docs/testing.md; the rows themselves are tested in test_reference_methods.py)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
import torch

from xhbench.errors import ConfigError
from xhbench.harness.config import resolve
from xhbench.methods.reference import HistMatch, Identity
from xhbench.methods.threshold import Threshold, best_threshold
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
SYN = TaskSpec("syn", "synthesis", ("T1", "T2"), ("T1", "T2"))
PETCT = TaskSpec("pet", "segmentation", ("PET", "CT"), ("background", "lesion"),
                 windows={"PET": (0.0, 20.0), "CT": (-1000.0, 1000.0)})
BRATS = TaskSpec("b18", "segmentation", ("flair", "t1ce", "t1", "t2"),
                 ("background", "ncr", "ed", "et"))


def build(method_cls, spec=SYN, **overrides):
    config = resolve(method_cls.name, method_cls.Config, method_cls.profiles, "smoke", {},
                     {k: str(v) for k, v in overrides.items()})
    return method_cls(config, spec, CPU)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


# --- identity and histmatch ------------------------------------------------------------

def test_transfer_references_name_themselves_in_their_errors():
    uneven = TaskSpec("syn", "synthesis", ("T1", "T2"), ("T1",))
    with pytest.raises(ConfigError, match=exactly(
            "identity is a transfer reference: it needs a synthesis task whose inputs and "
            "targets are the same modalities")):
        build(Identity, spec=uneven)
    image = np.ones((2, 4, 4, 4), dtype=np.float32)
    for method_cls in (Identity, HistMatch):
        with pytest.raises(ConfigError, match=exactly(
                f"{method_cls.name} maps one source modality; setting has 2")):
            build(method_cls).predict(image, (True, True))
    with pytest.raises(KeyError, match="histmatch state lacks T1, T2"):
        build(HistMatch).load_state_dict({})
    assert build(Identity).fit([], None, print) == {"steps": 0}


def crops(n: int, edge: int = 8, foreground: bool = True):
    """Training samples whose 4^3 foreground holds 64 values per channel, with ties."""
    g = torch.Generator().manual_seed(5)
    out = []
    for _ in range(n):
        target = (torch.rand(2, edge, edge, edge, generator=g) * 3).round(decimals=1)
        mask = torch.zeros(1, edge, edge, edge)
        if foreground:
            mask[:, 2:6, 2:6, 2:6] = 1
        out.append({"target": target * mask, "foreground": mask,
                    "image": target * mask, "available": torch.tensor([True, False])})
    return out


def template_counts(values: np.ndarray, quantiles: np.ndarray, total: int) -> Counter:
    """The multiset a full template (every distinct value kept) was built from."""
    counts = np.diff(np.concatenate([[0.0], quantiles])) * total
    return Counter({float(v): int(round(c)) for v, c in zip(values, counts)})


def test_histmatch_draws_values_per_crop_without_replacement_and_reproducibly():
    train = crops(2)
    lines: list[str] = []
    method = build(HistMatch, crops_per_case=1, values_per_crop=60, template_points=100_000)
    history = method.fit(train, None, lines.append)
    assert history == {"crops": 2, "voxels": {"T1": 120, "T2": 120}}
    assert lines == ["histmatch: target histograms from 2 training crops"]
    for c, name in enumerate(("T1", "T2")):
        available = Counter(float(v) for s in train
                            for v in s["target"][c][s["foreground"][0] > 0].numpy().astype(
                                np.float64))
        drawn = template_counts(*method.templates[name], total=120)
        assert sum(drawn.values()) == 120
        assert all(drawn[v] <= available[v] for v in drawn), "a value drawn more often than held"
    again = build(HistMatch, crops_per_case=1, values_per_crop=60, template_points=100_000)
    again.fit(train, None, lines.append)
    for name in ("T1", "T2"):  # the same draw: the subsample does not depend on a global seed
        for ours, theirs in zip(method.templates[name], again.templates[name]):
            np.testing.assert_array_equal(ours, theirs)


def test_histmatch_refuses_training_crops_without_foreground_and_predicts_float32():
    with pytest.raises(ConfigError, match=exactly(
            "histmatch: no foreground voxel of T1 in 2 training crops")):
        build(HistMatch, crops_per_case=1).fit(crops(2, foreground=False), None, print)
    method = build(HistMatch, crops_per_case=1)
    method.fit(crops(1), None, print)
    image = np.zeros((2, 4, 4, 4), dtype=np.float64)
    image[0, 1:3, 1:3, 1:3] = np.arange(8).reshape(2, 2, 2)
    assert method.predict(image, (True, False)).dtype == np.float32


# --- threshold -------------------------------------------------------------------------

def test_best_threshold_scores_an_empty_pooled_mask_zero():
    assert best_threshold(np.array([0.0, 1.0]), np.zeros(2), np.zeros(2), 0) == (0.0, 0.0)
    # hand-computed: Dice 2*3/(5+4) = 0.667 at 0.0, 2*3/(3+4) = 0.857 at 1.0
    assert best_threshold(np.array([0.0, 1.0]), np.array([5, 3]), np.array([3, 3]), 4) == \
        pytest.approx((1.0, 6 / 7))


def test_threshold_messages_in_full():
    with pytest.raises(ConfigError, match=exactly(
            "threshold segments: it needs a segmentation task")):
        build(Threshold, spec=SYN)
    t1_edema = TaskSpec("x", "segmentation", ("T1",), ("background", "ed"))
    with pytest.raises(ConfigError, match=exactly(
            "threshold has no rule for inputs ('T1',) and classes ('background', 'ed') (needs "
            "PET with its SUV window, or FLAIR with an edema class)")):
        build(Threshold, spec=t1_edema)
    with pytest.raises(ConfigError, match="grid_low=1 and grid_high=1: grid_low must be < "
                                          "grid_high$"):
        build(Threshold, spec=BRATS, grid_low=1, grid_high=1)
    with pytest.raises(ConfigError, match=exactly(
            "threshold: predict before fit (no FLAIR threshold learned)")):
        build(Threshold, spec=BRATS).predict(np.ones((4, 3, 3, 3), np.float32), (True,) * 4)


@pytest.mark.parametrize("body_hu", [-1000, 1000])
def test_the_body_threshold_must_lie_strictly_inside_the_ct_window(body_hu):
    with pytest.raises(ConfigError, match=exactly(
            f"method threshold option body_hu={body_hu}: must lie inside the task's CT window "
            "(-1000, 1000) HU")):
        build(Threshold, spec=PETCT, body_hu=body_hu)


def test_pet_rule_uses_its_body_threshold_and_says_so():
    lines: list[str] = []
    method = build(Threshold, spec=PETCT, body_hu=-900)
    assert method.fit([], None, lines.append) == {"rule": "SUV >= 2.5", "steps": 0}
    assert lines == ["threshold: fixed rule SUV >= 2.5 in the body"]
    ct = np.full((8, 8, 8), -1000.0)
    ct[2:6, 2:6, 2:6] = -700.0  # lung-like tissue: body at -900 HU, not at the default -500
    suv = np.zeros((8, 8, 8))
    suv[3, 3, 3] = 3.0
    image = np.stack([suv / 20, (ct + 1000) / 2000]).astype(np.float32)
    prediction = method.predict(image, (True, True))
    assert prediction[3, 3, 3] == 1 and prediction.sum() == 1


def test_flair_rule_with_a_pet_window_in_the_spec_stays_the_flair_rule():
    spec = TaskSpec("b", "segmentation", ("flair",), ("background", "ed"),
                    windows={"PET": (0.0, 20.0)})
    method = build(Threshold, spec=spec)
    method.load_state_dict({"flair_threshold": 1.5})
    image = np.array([0.0, 1.0, 1.5, 2.0], dtype=np.float32).reshape(1, 4, 1, 1)
    np.testing.assert_array_equal(method.predict(image, (True,)).ravel(), [0, 0, 1, 1])


def test_flair_prediction_includes_the_threshold_and_never_the_zero_background():
    method = build(Threshold, spec=BRATS)
    method.load_state_dict({"flair_threshold": -0.5})
    flair = np.array([0.0, -0.5, -0.6, 1.0], dtype=np.float32).reshape(4, 1, 1)
    image = np.stack([flair, *np.zeros((3, 4, 1, 1), np.float32)])
    assert method.predict(image, (True,) * 4).ravel().tolist() == [0, 2, 0, 2]


def flair_crop(flair: np.ndarray, label: np.ndarray, foreground: np.ndarray) -> dict:
    image = np.stack([flair, *np.zeros((3, *flair.shape))]).astype(np.float32)
    return {"image": torch.from_numpy(image), "label": torch.from_numpy(label[None]),
            "foreground": torch.from_numpy(foreground[None].astype(np.float32)),
            "available": torch.ones(4, dtype=torch.bool)}


def test_flair_rule_grid_ends_at_grid_high_and_pools_only_the_brain():
    """Grid 0, 0.5, 1 (grid_high included). Brain: 4 tumour voxels at 1.5-2 and 4 others at
    1.0-1.4 (one exactly 1.0); 4 bright voxels outside the foreground are not brain. At
    1.0 every brain voxel is above: Dice 2*4/(8+4) = 0.667, as at 0.5 and 0: the lowest
    value wins the tie. Without the 1.0 voxel or with the outside ones, Dice changes."""
    flair = np.array([1.5, 1.7, 1.9, 2.0, 1.0, 1.1, 1.3, 1.4, 5.0, 5.0, 5.0, 5.0])
    label = np.array([2, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0])
    foreground = np.arange(12) < 8
    train = [flair_crop(*(a.reshape(12, 1, 1) for a in (flair, label, foreground)))]
    lines: list[str] = []
    method = build(Threshold, spec=BRATS, grid_low=0, grid_high=1, grid_step=0.5,
                   crops_per_case=1)
    history = method.fit(train, None, lines.append)
    assert history == {"rule": "FLAIR >= threshold", "flair_threshold": 0.0,
                       "train_dice": pytest.approx(2 / 3), "crops": 1}
    assert lines == ["threshold: WT = FLAIR >= 0.00 (pooled training Dice 0.667 over 1 crops)"]
    sharper = build(Threshold, spec=BRATS, grid_low=0, grid_high=1.5, grid_step=0.5,
                    crops_per_case=1)
    assert sharper.fit(train, None, print)["flair_threshold"] == 1.5  # perfect at 1.5
    with pytest.raises(ConfigError, match=exactly(
            "threshold: no tumour voxel in 1 training crops")):
        build(Threshold, spec=BRATS, crops_per_case=1).fit(
            [flair_crop(*(a.reshape(12, 1, 1) for a in (flair, 0 * label, foreground)))],
            None, print)
