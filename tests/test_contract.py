"""The method contract for every registered method on each task it supports (methods
that other plugins add to the registry are covered as they come): a short training on
the task's smoke phantom, predictions of the right shape and range, and a state that
predicts the same after a round trip (xhbench.testing.check_training_contract)."""

from __future__ import annotations

import pytest

from xhbench.errors import UsageError
from xhbench.plugins import get_plugins
from xhbench.testing import check_training_contract, registered_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# nnU-Net's own planning and preprocessing take minutes per task even at the smoke profile
SLOW_METHODS = {"nnunetv2"}


@pytest.mark.parametrize("method, task", [
    pytest.param(method, task, marks=pytest.mark.slow) if method in SLOW_METHODS
    else (method, task) for method, task in registered_pairs()])
def test_a_registered_method_trains_predicts_and_restores(method, task, tmp_path,
                                                          phantom_cache):
    try:  # an optional package (e.g. nnunetv2) that is not installed: skipped, named
        get_plugins().registry.get("method", method).load().check_installed()
    except UsageError as exc:
        pytest.skip(str(exc))
    check_training_contract(method, task, tmp_path, cache_dir=phantom_cache)
