"""The method contract for every registered method on each task it supports (methods
that other plugins add to the registry are covered as they come): a short training on
the task's smoke phantom, predictions of the right shape and range, and a state that
predicts the same after a round trip (xhbench.testing.check_training_contract).

By default each method runs on one task it supports (brats18_missing or
brats23_transfer when it can); its other tasks are marked
``slow`` (``pytest -m slow tests/test_contract.py``). Measured on the shared 2-core
machine, loaded (commit 1cc2e54): the 19 segmentation pairs in 4 min 19 s, the 18
brats23_transfer pairs in 7 min (diffusion and msspade sampling about 1.5 min of it)."""

from __future__ import annotations

import pytest

from xhbench.errors import UsageError
from xhbench.plugins import get_plugins
from xhbench.testing import check_training_contract, registered_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# nnU-Net's own planning and preprocessing take minutes per task even at the smoke profile
SLOW_METHODS = {"nnunetv2"}

FIRST = ("brats18_missing", "brats23_transfer")  # the smallest phantoms, shared by other tests


def _pairs() -> list:
    """Each method's first pair runs by default, its others (and every pair of a method in
    SLOW_METHODS) are slow."""
    seen: set[str] = set()
    params = []
    pairs = sorted(registered_pairs(), key=lambda pair: (
        pair[0], FIRST.index(pair[1]) if pair[1] in FIRST else len(FIRST), pair[1]))
    for method, task in pairs:
        slow = method in seen or method in SLOW_METHODS
        params.append(pytest.param(method, task, marks=pytest.mark.slow if slow else ()))
        seen.add(method)
    return params


@pytest.mark.parametrize("method, task", _pairs())
def test_a_registered_method_trains_predicts_and_restores(method, task, tmp_path,
                                                          phantom_cache):
    try:  # an optional package (e.g. nnunetv2) that is not installed: skipped, named
        get_plugins().registry.get("method", method).load().check_installed()
    except UsageError as exc:
        pytest.skip(str(exc))
    check_training_contract(method, task, tmp_path, cache_dir=phantom_cache)
