"""Is the prior of ``ours`` used? The diagnostics it records (``prior_contribution``,
``xprime_variance_ratio``), the relative invariance loss, and a short fine-tuning on a
small two-modality phantom at the default placement. 32^3 crops, feature size 12, Swin
window 4, one torch thread. The 100-step fine-tuning is marked slow (run with ``-m slow``):
80 s on the shared 2-core machine at a load of 3-4, 12.9 min at a load of 10-13."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from xhbench.harness import config as cfg
from xhbench.methods.ours import losses as L
from xhbench.methods.ours.diagnostics import PriorContribution, variance_ratio
from xhbench.methods.ours.method import Ours, OursConfig
from xhbench.tasks.base import TaskSpec

SEG2 = TaskSpec("seg2", "segmentation", ("a", "b"), ("background", "lesion"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def phantom(count: int, size: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Spheres of smooth noise, each with a bright lesion (the label) at its own place:
    channel a shows the lesion strongly, channel b faintly."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij")).astype(np.float32)
    brain = ((grid - size / 2) ** 2).sum(0) < (0.45 * size) ** 2
    out = []
    for _ in range(count):
        centre = size / 2 + rng.uniform(-0.2, 0.2, 3) * size
        lesion = ((grid - centre[:, None, None, None]) ** 2).sum(0) < (0.12 * size) ** 2
        noise = rng.normal(size=(2, size, size, size)).astype(np.float32)
        image = (0.5 * noise + np.stack([2.0 * lesion, 0.7 * lesion])) * brain
        out.append({"image": image.astype(np.float32), "label": (lesion & brain)[None].astype(np.int64),
                    "foreground": brain[None].astype(np.float32)})
    return out


# --- the measurements themselves -------------------------------------------------------

def test_prior_contribution_counts_tumour_voxels_that_change_without_xprime():
    """A stand-in network whose 'decoder' thresholds X_h' + the input: voxels where the
    window's own X_h' decided the label change when it is replaced by its mean, or by
    the level's map h before O."""
    network = types.SimpleNamespace(replace_features=None)
    features = torch.tensor([[[[[0.0]]]], [[[[2.0]]]]])  # two windows, mean 1.0
    level = torch.tensor([[[[[0.0]]]], [[[[0.0]]]]])  # h: O added 2.0 in window 1

    def infer(x):
        seen = network.replace_features(features, level) if network.replace_features \
            else features
        logits = torch.stack([torch.full_like(x, 1.5), x + seen.reshape(2, 1, 1)], dim=1)
        return logits  # class 1 where x + X_h' > 1.5

    x = torch.tensor([[0.0, 1.0], [0.0, 1.0]])[..., None]  # (2 windows, 2, 1)
    probe = PriorContribution()
    prediction = probe.predict(network, infer, x)
    # own X_h': window 0 -> [0, 0], window 1 -> [1, 1]; mean 1.0 -> [0, 1] in both;
    # h (0 everywhere) -> [0, 0] in both
    assert prediction[..., 0].tolist() == [[0, 0], [1, 1]]
    assert (probe.tumour, probe.changed) == (2, {"mean": 1, "level": 2})
    assert probe.value == 0.5 and probe.fraction("level") == 1.0
    assert network.replace_features is None  # the hook is removed again


def test_variance_ratio_is_zero_for_identical_samples_and_scale_free():
    same = torch.ones(4, 3, 2, 2, 2) * torch.arange(3.0).reshape(1, 3, 1, 1, 1)
    assert variance_ratio(same) == 0.0
    x = torch.randn(4, 3, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    assert variance_ratio(x * 10) == pytest.approx(variance_ratio(x), rel=1e-5)


def test_relative_invariance_is_scale_free_and_not_minimised_by_shrinking():
    g = torch.Generator().manual_seed(0)
    views = torch.randn(2, 3, 4, 2, 2, 2, generator=g)  # 2 views of 3 subjects
    plain = L.invariance_loss(views)
    relative = L.invariance_loss(views, relative=True)
    shrunk = views * 0.1 + 3.0  # a smaller, shifted representation
    assert float(L.invariance_loss(shrunk, relative=True)) == pytest.approx(float(relative),
                                                                           rel=1e-4)
    assert float(L.invariance_loss(shrunk)) == pytest.approx(float(plain) * 1e-2, rel=1e-4)
    # views that agree relative to how subjects differ score lower
    subjects = torch.randn(1, 3, 4, 2, 2, 2, generator=g) * 5
    assert float(L.invariance_loss(subjects + views, relative=True)) < float(relative)


# --- a short fine-tuning at the default placement ---------------------------------------

@pytest.fixture(scope="module")
def tuned():
    config = cfg.resolve("method ours", OursConfig, Ours.profiles, "smoke",
                         {"pretrain_steps": "0", "steps": "100", "warmup_steps": "5",
                          "batch_size": "2"})
    torch.manual_seed(0)
    method = Ours(config, SEG2, torch.device("cpu"))
    rng = np.random.default_rng(1)
    data = [{**sample, "available": np.array(subset)}
            for sample, subset in zip(phantom(8, 32, seed=0),
                                      [(True, True), (True, False), (False, True)] * 3)]
    rng.shuffle(data)
    messages = []
    history = method.fit(data, None, messages.append)
    return method, history


@pytest.mark.slow
def test_the_invariance_loss_is_not_trivially_zero_after_100_steps(tuned):
    method, history = tuned
    assert method.config.prior_level == OursConfig.prior_level  # the default placement
    # relative to the spread of X_h' across subjects: a collapse would not lower it
    assert history["last"]["invariance"] > 1e-3, history["last"]


@pytest.mark.slow
def test_replacing_xprime_changes_predictions_and_xprime_has_not_collapsed(tuned):
    method, _ = tuned
    for sample in phantom(2, 48, seed=5):  # 48^3: several 32^3 sliding windows
        for available in [(True, True), (True, False), (False, True)]:
            method.predict(sample["image"], available)
    diagnostics = method.diagnostics()
    assert diagnostics["prior_contribution_tumour_voxels"] > 0
    assert diagnostics["prior_contribution"] > 0, diagnostics
    assert diagnostics["xprime_variance_ratio"] > 1e-2, diagnostics
