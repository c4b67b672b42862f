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

from xhbench.testing import check_training_contract, registered_pairs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


FIRST = ("brats18_missing", "brats23_transfer")  # the smallest phantoms, shared by other tests


def _pairs() -> list:
    seen: set[str] = set()
    params = []
    pairs = sorted(registered_pairs(), key=lambda pair: (
        pair[0], FIRST.index(pair[1]) if pair[1] in FIRST else len(FIRST), pair[1]))
    for method, task in pairs:
        params.append(pytest.param(method, task, marks=() if method not in seen
                                   else pytest.mark.slow))
        seen.add(method)
    return params


@pytest.mark.parametrize("method, task", _pairs())
def test_a_registered_method_trains_predicts_and_restores(method, task, tmp_path,
                                                          phantom_cache):
    try:
        check_training_contract(method, task, tmp_path, cache_dir=phantom_cache)
    except ModuleNotFoundError as exc:  # a method of an optional extra (nnunetv2)
        pytest.skip(f"{method} needs the package {exc.name}, an optional extra")
