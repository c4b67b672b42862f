"""Every learned method learns something (issue 16): at its smoke profile, trained on one
fixed crop of its first task's smoke phantom for a few steps, its loss falls and its
prediction of a test case is not constant (xhbench.testing.check_learning). Catches a
method that learns nothing (a dead class, a frozen network, a constant output) in seconds,
before a default-profile run would show it in minutes.

Methods are those whose smoke plan trains (reference rows do not); each on the first task
of tests/test_contract.py's order. Those over ~10 s on the shared 2-core machine are
``slow``."""

from __future__ import annotations

import pytest

from xhbench.errors import UsageError
from xhbench.harness.config import resolve
from xhbench.plugins import get_plugins
from xhbench.testing import check_learning, registered_pairs

from test_contract import FIRST, SLOW_METHODS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Steps (and option overrides) where the default 20 steps on a fixed crop are not
#: enough to see the loss fall.
LONGER: dict[str, dict] = {}

#: Methods whose 20 steps take more than about 10 s here.
SLOW = SLOW_METHODS | {"diffusion", "mddiff", "msspade"}


def _learned(name: str) -> bool:
    cls = get_plugins().registry.get("method", name).load()
    return bool(cls.training_plan(resolve(name, cls.Config, cls.profiles, "smoke")))


def _first_pairs() -> list:
    first: dict[str, str] = {}
    for method, task in sorted(registered_pairs(), key=lambda pair: (
            pair[0], FIRST.index(pair[1]) if pair[1] in FIRST else len(FIRST), pair[1])):
        first.setdefault(method, task)
    return [pytest.param(method, task, marks=pytest.mark.slow if method in SLOW else ())
            for method, task in first.items() if _learned(method)]


@pytest.mark.parametrize("method, task", _first_pairs())
def test_a_learned_method_lowers_its_loss_and_predicts_more_than_one_value(
        method, task, tmp_path, phantom_cache):
    try:
        get_plugins().registry.get("method", method).load().check_installed()
    except UsageError as exc:
        pytest.skip(str(exc))
    settings = LONGER.get(method, {})
    check_learning(method, task, tmp_path / "work", cache_dir=phantom_cache, **settings)
