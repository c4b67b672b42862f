"""Mid-training resume of the methods with their own training loops: N steps straight
give the same weights (bit for bit) as k steps, a crash right after the training state of
step k is saved, and a new method object resuming from the same folder to N. Tiny
networks and volumes, one torch thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from test_baselines import samples as segmentation_samples
from test_ours import SEG2
from test_ours import volumes as ours_volumes
from test_translation_methods import SPEC as TRANSLATION_SPEC
from test_translation_methods import sample as translation_sample

from xhbench.harness.config import resolve
from xhbench.training import state as training
from xhbench.methods.missing.hemis import HeMISMethod
from xhbench.methods.missing.m3ae import M3AEMethod
from xhbench.methods.missing.shaspec import ShaSpecMethod
from xhbench.methods.missing.spa import SPAMethod
from xhbench.methods.ours.method import Ours
from xhbench.methods.swinunetr_ssl import SwinUNETRSSLMethod
from xhbench.training.state import TrainingState
from xhbench.methods.translation.cyclegan import CycleGAN2D
from xhbench.methods.translation.resvit import ResViT
from xhbench.tasks.base import TaskSpec

CPU = torch.device("cpu")
SEG4 = TaskSpec("seg", "segmentation", ("flair", "t1ce", "t1", "t2"),
                ("background", "ncr", "ed", "et"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ours_data() -> list[dict[str, Any]]:
    v = ours_volumes(2, 2)
    return [{"image": v["image"][i], "label": v["label"][i], "foreground": v["foreground"][i],
             "available": np.array([True, i == 0])} for i in range(2)]


def missing_data() -> list[dict[str, Any]]:
    data = segmentation_samples(SEG4, n=2, edge=16)
    data[1]["available"] = torch.tensor([True, False, True, False])
    return data


def ssl_crops() -> list[dict[str, Any]]:
    return [{"image": s["image"], "foreground": s["foreground"]}
            for s in segmentation_samples(SEG4, n=2)]


def translation_data(edge: int = 16) -> list[dict[str, Any]]:
    return [translation_sample((edge, edge, 1), seed) for seed in (0, 1)]


@dataclass(frozen=True)
class Loop:
    """A training loop: the method, its spec and tiny options, how to train it, its data;
    ``every``: steps between training states (the crash comes right after the first)."""

    name: str
    method_cls: type
    spec: TaskSpec
    options: Mapping[str, Any]
    train: Callable[[Any, Any, Any, Callable[[str], None]], dict[str, Any]]
    data: Callable[[], list[dict[str, Any]]]
    every: int = 1


def fit(method, data, workdir, log):
    return method.fit(data, workdir, log)


def pretrain(method, data, workdir, log):
    return method.pretrain(data, workdir, log)


LOOPS = [
    Loop("ours_finetune", Ours, SEG2, {"steps": 2, "batch_size": 1}, fit, ours_data),
    Loop("ours_pretrain", Ours, SEG2, {"pretrain_steps": 2}, pretrain, ours_data),
    Loop("missing_base", HeMISMethod, SEG4,
         {"roi": "16,16,16", "levels": 2, "steps": 2, "batch_size": 1}, fit, missing_data),
    # crash after the RFNet step: the GSS step's random voxel masks come from the restored RNG
    Loop("spa", SPAMethod, SEG4, {"roi": "16,16,16", "levels": 2, "steps": 2, "batch_size": 1,
                                  "support_start_steps": 1}, fit, missing_data),
    # crash after the full-modality step: the drawn masks and the resumed poly curve follow
    Loop("shaspec", ShaSpecMethod, SEG4, {"roi": "16,16,16", "levels": 2, "steps": 2,
                                          "batch_size": 1, "full_modality_steps": 1},
         fit, missing_data),
    # crash within the second stage: the stage's own optimiser is restored
    Loop("m3ae", M3AEMethod, SEG4, {"roi": "16,16,16", "levels": 2, "mask_patch": 4,
                                    "pretrain_steps": 1, "steps": 2, "batch_size": 1},
         fit, missing_data, every=2),
    # two optimisers and the image pools, one stage
    Loop("translation_base", CycleGAN2D, TRANSLATION_SPEC,
         {"roi": "16,16,1", "n_layers_d": 1, "n_blocks": 1, "ngf": 4, "ndf": 4, "pool_size": 1,
          "steps": 2, "pairs": "T1->T2", "intensity_scale": 4.0}, fit, translation_data),
    # crash at the end of the Res-CNN stage: the ResViT stage starts with fresh optimisers
    Loop("resvit", ResViT, TRANSLATION_SPEC,
         {"roi": "32,32,1", "n_layers_d": 1, "n_art": 2, "transformer_blocks": "1",
          "cnn_steps": 1, "steps": 2, "pairs": "T1->T2", "intensity_scale": 4.0},
         fit, lambda: translation_data(32)),
    Loop("swinunetr_ssl", SwinUNETRSSLMethod, SEG4,
         {"pretrain_steps": 2, "pretrain_batch_size": 1, "contrastive_dim": 8}, pretrain,
         ssl_crops),
]


class Crash(Exception):
    pass


def build(loop: Loop):
    torch.manual_seed(0)  # as the runner seeds before building the method
    config = resolve(loop.name, loop.method_cls.Config, loop.method_cls.profiles, "smoke",
                     {k: str(v) for k, v in {**loop.options, "progress": False,
                                             "checkpoint_every": loop.every}.items()})
    return loop.method_cls(config, loop.spec, CPU)


def tensors(state: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a (nested) state dict by its dotted path."""
    if isinstance(state, Mapping):
        return {k: v for key, value in state.items()
                for k, v in tensors(value, f"{prefix}{key}.").items()}
    return {prefix: state}


@pytest.mark.parametrize("loop", LOOPS, ids=lambda loop: loop.name)
def test_resumed_training_ends_with_the_weights_of_an_uninterrupted_run(loop, tmp_path,
                                                                        monkeypatch):
    data = loop.data()
    for folder in ("straight", "stopped"):
        (tmp_path / folder).mkdir()
    straight = build(loop)
    loop.train(straight, data, tmp_path / "straight", lambda _: None)

    save = training.save_training_state

    def save_then_crash(*args, **kwargs):
        save(*args, **kwargs)
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(training, "save_training_state", save_then_crash)
        with pytest.raises(Crash):
            loop.train(build(loop), data, tmp_path / "stopped", lambda _: None)

    messages: list[str] = []
    resumed = build(loop)
    history = loop.train(resumed, data, tmp_path / "stopped", messages.append)
    assert history["resumed_at"] == loop.every
    assert any(f"resumed training at step {loop.every}" in m for m in messages)
    expected, got = tensors(straight.state_dict()), tensors(resumed.state_dict())
    assert expected.keys() == got.keys()
    for key, value in expected.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, got[key]), key
        else:
            assert value == got[key], key


def test_training_state_saves_every_n_steps_and_nothing_without_a_folder(tmp_path):
    net = torch.nn.Linear(2, 1)
    state = TrainingState(tmp_path, "s.pt", 2)
    assert state.resume(network=net) == 0  # no file: from the start
    state.save_after(0, network=net)
    assert not state.exists()
    state.save_after(1, network=net)
    assert state.resume(network=net) == 2
    assert TrainingState(tmp_path, "s.pt", 2).resume_stage(2, 0, 2) == 2  # stage done
    assert TrainingState(tmp_path, "s.pt", 2).resume_stage(2, 2, 3) == 0  # stage not begun
    assert TrainingState(tmp_path, "s.pt", 2).resume_stage(2, 1, 3, network=net) == 1
    for quiet in (TrainingState(None, "s.pt", 1), TrainingState(tmp_path, "q.pt", 0),
                  TrainingState(tmp_path, "q.pt", 1, writes=False)):
        quiet.save_after(0, network=net)
        assert quiet.resume(network=net) == 0
    assert not (tmp_path / "q.pt").exists()
