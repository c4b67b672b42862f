"""Every learned method learns something (issue 16): at its smoke profile, trained on one
fixed crop of its first task's smoke phantom for a few steps, its loss falls and its
prediction of a test case is not constant (xhbench.testing.check_learning). Catches a
method that learns nothing (a dead class, a frozen network, a constant output) in seconds,
before a default-profile run would show it in minutes.

Methods are those whose smoke plan trains (reference rows do not); each on the first task
of tests/test_contract.py's order. Those over ~30 s on the shared 2-core machine (at load
8-11) are ``slow``: 23 methods in 11.7 min then, 12 in the default selection."""

from __future__ import annotations

import pytest

from xhbench.errors import UsageError
from xhbench.harness.config import resolve
from xhbench.plugins import get_plugins
from xhbench.testing import check_learning, registered_pairs

from test_contract import FIRST, SLOW_METHODS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Where the total loss is not the one to watch: spa's group self-support term starts at
#: step 1 of its smoke profile and chases targets that move as the students learn, so
#: its fused segmentation loss is watched.
SETTINGS: dict[str, dict] = {"spa": {"term": "fuse"}}

#: Methods over ~30 s here (measured at load 8-11 on the 2 shared cores: cyclegan3d 159 s,
#: spadegan 70 s, swinunetr 48 s, cut 46 s; diffusion, mddiff and msspade sample too).
SLOW = SLOW_METHODS | {"cyclegan3d", "spadegan", "swinunetr", "cut", "diffusion", "mddiff",
                       "msspade", "m2ftrans", "mmformer", "spa", "shaspec"}


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
    check_learning(method, task, tmp_path / "work", cache_dir=phantom_cache,
                   **SETTINGS.get(method, {}))
