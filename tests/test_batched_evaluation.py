"""Batched evaluation (issue 9): ``Method.predict_settings`` predicts one case under all
settings in one call and must equal calling ``predict`` once per setting.

- Zero-filling methods (SupervisedMethod, here SwinUNETR): the settings' zero-filled
  inputs go through the sliding windows as one batch. Segmentation labels are identical;
  synthesis values agree within rtol = atol = 1e-5 (measured: 2e-6 on values near 2),
  the float rounding of a convolution run with another batch composition.
- Methods with per-modality encoders (HeMIS, RFNet, mmFormer, M2FTrans, SPA, ShaSpec): each
  modality is encoded once per window (ShaSpec: its shared and its specific encoder) and the
  fusion runs per subset; labels are identical (and
  bit-identical when each subset is decoded alone). M3AE (one U-Net) batches the subsets.
- ``evaluate`` writes the same cases.csv values with the batched call as with the
  per-setting loop.

Smoke widths, one torch thread, volumes of one or two windows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from xhbench.datasets.brats18 import BraTS18
from xhbench.harness.config import resolve
from xhbench.harness.evaluation import SettingInputs, evaluate
from xhbench.results import RunDir
from xhbench.methods.base import Method
from xhbench.methods.missing.base import MissingModalityMethod
from xhbench.methods.missing.hemis import HeMISMethod
from xhbench.methods.missing.m2ftrans import M2FTransMethod
from xhbench.methods.missing.m3ae import M3AEMethod
from xhbench.methods.missing.mmformer import MMFormerMethod
from xhbench.methods.missing.rfnet import RFNetMethod
from xhbench.methods.missing.shaspec import ShaSpecMethod
from xhbench.methods.missing.spa import SPAMethod
from xhbench.methods.nnunet import NNUNetMethod
from xhbench.methods.supervised import SupervisedMethod
from xhbench.methods.swinunetr import SwinUNETRMethod
from xhbench.tasks.base import TaskSpec
from xhbench.tasks.brats18_missing import MASKS, BraTS18Missing

CPU = torch.device("cpu")
SEG = TaskSpec("brats18_missing", "segmentation", ("flair", "t1ce", "t1", "t2"),
               ("background", "ncr", "ed", "et"))
SYN = TaskSpec("synthesis", "synthesis", ("t1", "t1ce", "t2", "flair"), ("t1ce",))
AVAILABLE = [m.available for m in MASKS]
MISSING = (HeMISMethod, RFNetMethod, MMFormerMethod, M2FTransMethod, M3AEMethod, SPAMethod,
           ShaSpecMethod)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def build(method_cls, spec=SEG, seed: int = 0, **overrides):
    torch.manual_seed(seed)
    config = resolve(method_cls.name, method_cls.Config, method_cls.profiles, "smoke", {},
                     {k: str(v) for k, v in overrides.items()})
    return method_cls(config, spec, CPU)


def volume(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def zero_filled(image: np.ndarray, available) -> np.ndarray:
    return image * np.asarray(available, dtype=np.float32)[:, None, None, None]


def per_setting(method: Method, images, availables) -> list[np.ndarray]:
    return [method.predict(image, available) for image, available in zip(images, availables)]


# --- zero-filling methods: one batch ---------------------------------------------------

def test_swinunetr_segmentation_batched_equals_per_setting_loop():
    method = build(SwinUNETRMethod, sw_batch_size=3)  # passes mix windows of 3 settings
    image = volume((4, 30, 32, 32))  # padded to one 32^3 window per setting
    availables = AVAILABLE[11:]
    images = [zero_filled(image, a) for a in availables]
    expected = per_setting(method, images, availables)
    got = method.predict_settings(images, availables)
    assert len(got) == len(availables)
    for one, reference in zip(got, expected):
        assert one.shape == (30, 32, 32) and one.dtype == np.int64
        assert np.array_equal(one, reference)


def test_swinunetr_synthesis_batched_within_float_tolerance_of_the_loop():
    method = build(SwinUNETRMethod, spec=SYN, sw_batch_size=3)
    image = volume((4, 32, 32, 40), seed=1)  # two windows per setting
    availables = [(True, False, False, False), (False, True, True, False),
                  (True, True, True, True)]
    images = [zero_filled(image, a) for a in availables]
    expected = per_setting(method, images, availables)
    got = method.predict_settings(images, availables)
    for one, reference in zip(got, expected):
        assert one.shape == (1, 32, 32, 40) and one.dtype == np.float32
        np.testing.assert_allclose(one, reference, rtol=1e-5, atol=1e-5)
    # the settings differ, so equal outputs are not an accident
    assert not np.allclose(got[0], got[2], atol=1e-3)


def test_settings_are_grouped_under_the_memory_budget(monkeypatch):
    method = build(NNUNetMethod)
    image = volume((4, 32, 32, 32), seed=2)
    availables = AVAILABLE[:5]
    images = [zero_filled(image, a) for a in availables]
    batches = []
    original = method._sliding_window

    def spy(batch):
        batches.append(batch.shape[0])
        return original(batch)

    monkeypatch.setattr(method, "_sliding_window", spy)
    per_setting_bytes = 4 * image[0].size * (4 + 4)
    monkeypatch.setattr("xhbench.methods.supervised.SETTINGS_BATCH_BYTES", 2 * per_setting_bytes)
    got = method.predict_settings(images, availables)
    assert batches == [2, 2, 1]
    expected = per_setting(method, images, availables)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


# --- per-modality encoders: encode once, fuse per subset --------------------------------

@pytest.mark.parametrize("method_cls", MISSING, ids=lambda c: c.name)
def test_missing_methods_batched_equal_per_setting_loop_for_all_15_subsets(method_cls):
    method = build(method_cls)
    image = volume((4, 36, 30, 32), seed=3)  # padded, two windows
    expected = per_setting(method, [image] * 15, AVAILABLE)
    got = method.predict_settings([image] * 15, AVAILABLE)
    assert len(got) == 15
    for one, reference in zip(got, expected):
        assert one.shape == (36, 30, 32) and one.dtype == np.int64
        assert np.array_equal(one, reference)


def test_each_modality_is_encoded_once_per_window_pass():
    method = build(MMFormerMethod, sw_batch_size=1)  # one window per pass, 2 windows
    image = volume((4, 36, 30, 32), seed=4)
    calls = [0] * 4
    for m, encoder in enumerate(method.network.encoders):
        first_conv = next(module for module in encoder.modules()
                          if isinstance(module, torch.nn.Conv3d))
        first_conv.register_forward_hook(
            lambda *_, m=m: calls.__setitem__(m, calls[m] + 1))
    got = method.predict_settings([image] * 15, AVAILABLE)
    assert calls == [2, 2, 2, 2]  # once per window, not once per window and subset
    calls[:] = [0] * 4
    expected = per_setting(method, [image] * 15, AVAILABLE)
    assert calls == [30, 30, 30, 30]
    # one subset decoded per pass here: the same batches as the loop, so bit-identical
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_missing_method_with_garbage_in_missing_channels_still_matches():
    """The encoders see the full image; a missing channel's values must not matter."""
    method = build(RFNetMethod)
    image = volume((4, 32, 32, 32), seed=5)
    garbage = image.copy()
    garbage[1] = np.nan
    garbage[3] = 1e5
    availables = [a for a in AVAILABLE if not a[1] and not a[3]]  # t1ce and t2 missing
    expected = per_setting(method, [image] * len(availables), availables)
    got = method.predict_settings([garbage] * len(availables), availables)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_encoders_are_restored_after_an_error():
    method = build(HeMISMethod)
    image = volume((4, 32, 32, 32), seed=6)
    broken = torch.nn.Module()
    broken.forward = lambda *args: (_ for _ in ()).throw(RuntimeError("boom"))
    method.network.decoder.bottom = broken
    with pytest.raises(RuntimeError, match="boom"):
        method.predict_settings([image] * 2, AVAILABLE[:2])
    assert all("forward" not in encoder.__dict__ for encoder in method.network.encoders)


def test_subclass_with_its_own_predict_falls_back_to_the_loop():
    class Shifted(SwinUNETRMethod):
        def predict(self, image, available):
            return super().predict(image, available) + 1

    class ShiftedMissing(HeMISMethod):
        def predict(self, image, available):
            return super().predict(image, available) + 1

    for cls in (Shifted, ShiftedMissing):
        method = build(cls)
        image = volume((4, 32, 32, 32), seed=7)
        got = method.predict_settings([image, image], AVAILABLE[:2])
        assert all(p.min() >= 1 for p in got)
    assert SupervisedMethod.predict_settings is not Method.predict_settings
    assert MissingModalityMethod.predict_settings is not SupervisedMethod.predict_settings


def test_predict_settings_checks_lengths():
    method = build(HeMISMethod)
    with pytest.raises(ValueError, match="2 inputs for 3 settings"):
        method.predict_settings([volume((4, 32, 32, 32))] * 2, AVAILABLE[:3])


# --- the evaluation loop ------------------------------------------------------------------

@pytest.fixture(scope="module")
def task(tmp_path_factory):
    config = resolve("task", BraTS18Missing.Config, BraTS18Missing.profiles, "smoke",
                     {"phantom_train": 1, "phantom_test": 2})
    data = BraTS18.open(None, cache_dir=tmp_path_factory.mktemp("cache"),
                        **BraTS18Missing.phantom_params(config))
    return BraTS18Missing(config, data)


def test_setting_inputs_zero_fill_per_setting_or_share_the_image(task):
    item = task.prepare(task.data.read(task.test_cases()[0]))
    settings = task.settings()
    filled = SettingInputs(task, item, settings, handles_missing=False)
    assert len(filled) == 15
    for index in (0, 9, 14):
        expected = task.inputs(item, settings[index], handles_missing=False)
        assert np.array_equal(filled[index], expected)
    assert len(filled[2:5]) == 3
    shared = SettingInputs(task, item, settings, handles_missing=True)
    assert all(shared[i] is item.image for i in range(15))


@pytest.mark.parametrize("method_cls", (NNUNetMethod, HeMISMethod), ids=lambda c: c.name)
def test_evaluate_writes_the_same_cases_csv_as_the_per_setting_loop(task, method_cls,
                                                                   tmp_path, monkeypatch):
    method = build(method_cls)
    cases = task.test_cases()
    calls = []
    original = method.predict_settings

    def counted(images, availables):
        calls.append(len(availables))
        return original(images, availables)

    monkeypatch.setattr(method, "predict_settings", counted)
    batched = RunDir.create(tmp_path, task.name, method.name, 0, "b" * 64)
    assert evaluate(task, method, cases, batched, progress=False) == [c.case_id for c in cases]
    assert calls == [15] * len(cases)  # one call per case, all settings

    monkeypatch.setattr(method, "predict_settings",
                        lambda images, availables: Method.predict_settings(method, images,
                                                                           availables))
    looped = RunDir.create(tmp_path, task.name, method.name, 0, "l" * 64)
    evaluate(task, method, cases, looped, progress=False)
    a, b = batched.cases(), looped.cases()
    assert len(a) == len(cases) * 15 * 4
    pd.testing.assert_frame_equal(a, b, check_exact=True)


# --- the compile flag -----------------------------------------------------------------------

def test_compile_flag_keeps_the_state_dict_and_the_missing_path_eager():
    """``compile`` compiles the network in place (lazily: nothing is compiled here), so
    checkpoints keep their keys; the encoder-sharing path of the missing-modality methods
    runs the network's forward eagerly and gives the same labels."""
    plain = build(SwinUNETRMethod)
    compiled = build(SwinUNETRMethod, compile=True)
    assert compiled.config.compile and not plain.config.compile
    assert list(compiled.state_dict()["network"]) == list(plain.state_dict()["network"])
    compiled.load_state_dict(plain.state_dict())

    image = volume((4, 32, 32, 32), seed=8)
    hemis = build(HeMISMethod)
    hemis_compiled = build(HeMISMethod, compile=True)
    expected = hemis.predict_settings([image] * 3, AVAILABLE[:3])
    got = hemis_compiled.predict_settings([image] * 3, AVAILABLE[:3])
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
