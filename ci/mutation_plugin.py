"""pytest plugin for mutmut runs (``ci/mutation.sh`` loads it through ``PYTEST_ADDOPTS``).

Each mutant's tests run in a fresh fork of mutmut's fork server, which has imported torch,
MONAI and every selected test module, and stop at the first failure (``-x``). Three things
make such a run slower than the test that kills the mutant:

- every full garbage collection walks that whole inherited heap (pytest's unraisable-
  exception plugin forces several at the end of each session): ``gc.freeze()`` at
  configuration moves what exists then out of the collector's sight, so only the objects
  the tests make are scanned;
- mutmut's fork server passes a mutant's tests in set order, so a kill by a fast test may
  come after a slow end-to-end run;
- the test that kills a mutant usually kills the other mutants of the same function too.

So the tests that killed mutants of the mutated function before (recorded in
``mutation-kills.jsonl`` beside mutmut's stats) run first, most kills first; then the others,
fastest module first and fastest test first within a module (a module's tests stay
together so its module-scoped fixtures are set up once), by the call times of mutmut's stats
pass. None of this changes a verdict: the same tests run on the same code, and a mutant that
one of them kills is killed whatever the order.
"""

from __future__ import annotations

import gc
import json
import os
from collections import Counter, defaultdict
from pathlib import Path

STATS = Path("mutmut-stats.json")  # mutmut runs the tests from its mutants/ folder
KILLS = Path("mutation-kills.jsonl")


def _function() -> str | None:
    """The mutated function's mangled name, in a mutant's run; else None."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    return mutant.rsplit("__mutmut_", 1)[0] if "__mutmut_" in mutant else None


def pytest_configure(config):
    gc.freeze()


def pytest_collection_modifyitems(session, config, items):
    function = _function()
    if function is None or not STATS.is_file():
        return
    duration = json.loads(STATS.read_text()).get("duration_by_test", {})
    kills = Counter()
    if KILLS.is_file():
        for line in KILLS.read_text().splitlines():
            kill = json.loads(line)
            if kill["function"] == function:
                kills[kill["test"]] += 1
    seconds = [duration.get(item.nodeid, 0.0) for item in items]
    per_module = defaultdict(float)
    for item, s in zip(items, seconds, strict=True):
        per_module[item.path] += s
    order = sorted(range(len(items)), key=lambda i: (-kills[items[i].nodeid],
                                                     per_module[items[i].path], items[i].path,
                                                     seconds[i]))
    items[:] = [items[i] for i in order]


def pytest_runtest_logreport(report):
    function = _function()
    if report.failed and function is not None and STATS.is_file():
        with KILLS.open("a") as out:
            out.write(json.dumps({"function": function, "test": report.nodeid}) + "\n")
