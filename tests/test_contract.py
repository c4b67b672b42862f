"""The method contract for every registered method on each task it supports (methods
that other plugins add to the registry are covered as they come): a short training on
the task's smoke phantom, predictions of the right shape and range, and a state that
predicts the same after a round trip (xhbench.testing.check_training_contract)."""

from __future__ import annotations

import pytest

from xhbench.testing import check_training_contract, registered_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("method, task", registered_pairs())
def test_a_registered_method_trains_predicts_and_restores(method, task, tmp_path,
                                                          phantom_cache):
    check_training_contract(method, task, tmp_path, cache_dir=phantom_cache)
