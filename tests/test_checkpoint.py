"""Final checkpoints: a checkpoint made for something else is a clear error."""

from __future__ import annotations

import pytest
import torch

from xhbench.errors import XhbenchError
from xhbench.harness.checkpoint import load_checkpoint, save_checkpoint
from xhbench.tasks.base import TaskSpec
from xhbench.testing import FakeConfig, FakeMethod

SPEC = TaskSpec("t", "segmentation", ("a", "b"), ("bg", "fg"))


def fake(name="fake", spec=SPEC):
    method = FakeMethod(FakeConfig(threshold=0.25), spec, torch.device("cpu"))
    method.name = name
    return method


def test_round_trip(tmp_path):
    save_checkpoint(tmp_path / "c.pt", fake(), FakeConfig(threshold=0.25), SPEC)
    restored = fake()
    restored.config.threshold = 9.0
    load_checkpoint(tmp_path / "c.pt", restored, SPEC)
    assert restored.config.threshold == 0.25
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("loader, message", [
    (lambda: (fake("other"), SPEC), "made by method 'fake', not 'other'"),
    (lambda: (fake(), TaskSpec("t", "segmentation", ("a", "b", "c"), ("bg", "fg"))),
     "in_channels ('a', 'b'), the task needs ('a', 'b', 'c')"),
])
def test_mismatched_checkpoint(tmp_path, loader, message):
    save_checkpoint(tmp_path / "c.pt", fake(), FakeConfig(), SPEC)
    method, spec = loader()
    with pytest.raises(XhbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_checkpoint(tmp_path / "c.pt", method, spec)


@pytest.mark.parametrize("content", [b"not a pickle", b""])
def test_corrupt_checkpoint(tmp_path, content):
    (tmp_path / "c.pt").write_bytes(content)
    with pytest.raises(XhbenchError, match="cannot be read"):
        load_checkpoint(tmp_path / "c.pt", fake(), SPEC)
