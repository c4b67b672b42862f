"""pytest plugin for mutmut runs (``ci/mutation.sh`` loads it through ``PYTEST_ADDOPTS``).

Each mutant's tests run in a fresh fork of mutmut's fork server, which has imported torch,
MONAI and every selected test module. Two things make such a run slower than its tests:

- every full garbage collection walks that whole inherited heap (pytest's unraisable-
  exception plugin forces several at the end of each session): ``gc.freeze()`` at
  configuration moves what exists then out of the collector's sight, so only the objects
  the tests make are scanned;
- mutmut's fork server passes a mutant's tests in set order, so a kill by a fast test may
  come after a slow end-to-end run: the tests run fastest module first, fastest test first
  within a module (a module's tests stay together so its module-scoped fixtures are set up
  once), by the call times of mutmut's own stats pass.

Neither changes a verdict: the same tests run on the same code; ``-x`` stops at the first
failure either way.
"""

from __future__ import annotations

import gc
import json
import os
from collections import defaultdict
from pathlib import Path


def pytest_configure(config):
    gc.freeze()


def pytest_collection_modifyitems(session, config, items):
    stats = Path("mutmut-stats.json")  # mutmut runs the tests from its mutants/ folder
    if not os.environ.get("MUTANT_UNDER_TEST") or not stats.is_file():
        return
    duration = json.loads(stats.read_text()).get("duration_by_test", {})
    seconds = [duration.get(item.nodeid, 0.0) for item in items]
    per_module = defaultdict(float)
    for item, s in zip(items, seconds, strict=True):
        per_module[item.path] += s
    order = sorted(range(len(items)), key=lambda i: (per_module[items[i].path], items[i].path,
                                                     seconds[i]))
    items[:] = [items[i] for i in order]
