"""Reproducible step batches and resumable training state."""

from __future__ import annotations

import pytest
import torch

from xhbench.datasets.brats18 import BraTS18
from xhbench.harness.config import resolve
from xhbench.training.batches import StepBatches
from xhbench.training.state import load_training_state, save_training_state
from xhbench.tasks.brats18_missing import BraTS18Missing


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    config = resolve("task", BraTS18Missing.Config, BraTS18Missing.profiles, "smoke",
                     {"phantom_train": 3, "phantom_test": 1})
    data = BraTS18.open(None, cache_dir=tmp_path_factory.mktemp("cache"),
                        **BraTS18Missing.phantom_params(config))
    task = BraTS18Missing(config, data)
    return task.training_data(task.train_cases(), (32, 32, 32), handles_missing=False)


def test_a_step_batch_depends_only_on_seed_and_step(samples):
    first, again = StepBatches(samples, 2, seed=7), StepBatches(samples, 2, seed=7)
    assert torch.equal(first(4)["image"], again(4)["image"])
    assert torch.equal(first(4)["available"], again(4)["available"])
    assert not torch.equal(first(4)["image"], first(7)["image"])
    assert not torch.equal(first(4)["image"], StepBatches(samples, 2, seed=8)(4)["image"])


def test_drawing_batches_leaves_the_cached_cases_untouched(samples):
    # The cache is handed out without a copy: a transform writing into its input would
    # make the same steps differ when drawn again.
    batches = StepBatches(samples, 2, seed=3)
    steps = range(2 * batches.per_epoch)
    first = [batches(step) for step in steps]
    for step, batch in zip(steps, first):
        again = batches(step)
        for key in ("image", "label", "foreground"):
            assert torch.equal(batch[key], again[key]), (step, key)


def test_batches_are_plain_tensors_and_metadata_tracking_is_restored(samples):
    from monai.data import MetaTensor, get_track_meta

    batch = StepBatches(samples, 2, seed=0)(0)
    assert type(batch["image"]) is torch.Tensor and not isinstance(batch["label"], MetaTensor)
    assert get_track_meta()


def test_epochs_are_new_permutations_with_new_augmentations(samples):
    batches = StepBatches(samples, 1, seed=0)
    ids = [[batches(epoch * 3 + i)["case_id"][0] for i in range(3)] for epoch in range(4)]
    assert all(sorted(order) == sorted(ids[0]) for order in ids)  # each epoch sees every case
    crops = {batches(epoch * 3)["image"].sum().item() for epoch in range(4)}
    assert len(crops) > 1  # not the first epoch's augmentations replayed


def test_training_state_round_trip_restores_step_weights_and_rng(tmp_path):
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.1)
    net(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    torch.manual_seed(3)
    save_training_state(tmp_path / "state.pt", step=12, network=net, optimizer=optimizer)
    expected = torch.rand(3)
    restored, restored_optimizer = torch.nn.Linear(3, 2), None
    restored_optimizer = torch.optim.AdamW(restored.parameters(), lr=0.1)
    step = load_training_state(tmp_path / "state.pt", network=restored,
                               optimizer=restored_optimizer)
    assert step == 12
    assert torch.equal(torch.rand(3), expected)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), restored.parameters()))
    assert restored_optimizer.state_dict()["state"][0]["step"] == 1
    with pytest.raises(ValueError, match="lacks scheduler"):
        load_training_state(tmp_path / "state.pt", network=restored, scheduler=net)


def test_non_finite_loss_stops_with_its_step_and_keeps_the_last_checkpoint(samples, tmp_path):
    from xhbench.errors import TrainingError
    from xhbench.harness.config import resolve
    from xhbench.methods.supervised import SupervisedConfig, SupervisedMethod
    from xhbench.tasks.base import TaskSpec

    class Diverging(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(4, 4, 1)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            out = self.conv(x)
            return out * float("nan") if self.calls > 2 else out

    class Tiny(SupervisedMethod):
        name = "tiny"
        Config = SupervisedConfig

        def build_network(self, in_channels, out_channels):
            return Diverging()

    config = resolve("tiny", SupervisedConfig, {}, "default",
                     {"roi": (32, 32, 32), "steps": 5, "batch_size": 1, "checkpoint_every": 1,
                      "progress": False})
    spec = TaskSpec("t", "segmentation", ("a", "b", "c", "d"), ("0", "1", "2", "3"))
    method = Tiny(config, spec, torch.device("cpu"))
    with pytest.raises(TrainingError, match=r"loss is nan at step 2; last good checkpoint: .*"
                                            r"training_state\.pt"):
        method.fit(samples, tmp_path, lambda message: None)
    assert load_training_state(tmp_path / "training_state.pt", network=method.network) == 2
