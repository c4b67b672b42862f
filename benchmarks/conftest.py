"""Shared pieces of the benchmark suite (``pytest benchmarks/ --benchmark-only``).

Not collected by the default ``pytest`` run (``testpaths = ["tests"]``). Every benchmark
measures xhbench against its anchor in the same run, interleaving their rounds so that
both see the same load on a shared machine, records the ratio, and the ratios are
printed together at the end (``--ratios-json PATH`` also writes them as JSON).

Torch keeps its default thread count: set ``OMP_NUM_THREADS`` before running to change it.
Phantoms are written into a temporary cache (or ``$XHBENCH_BENCH_CACHE`` to reuse one).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_RATIOS: list[dict[str, Any]] = []
_MACHINE: dict[str, Any] = {}


def pytest_addoption(parser):
    parser.addoption("--ratios-json", default=None,
                     help="write the benchmark ratios and the machine description to this file")
    parser.addoption("--strict-targets", action="store_true", default=False,
                     help="exit with status 1 when a measured ratio misses its target "
                          "(timings on a shared machine are noisy, so off by default)")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    import monai
    import numpy
    import torch

    try:
        import skimage
        skimage_version = skimage.__version__
    except ImportError:  # pragma: no cover - the benchmark needing it skips
        skimage_version = None
    return {"nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count(), "cpu": cpu_model(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "monai": monai.__version__, "numpy": numpy.__version__,
            "skimage": skimage_version, "python": platform.python_version(),
            "cuda": torch.cuda.is_available(),
            "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


@pytest.fixture(scope="session", autouse=True)
def _bench_environment(tmp_path_factory):
    """Hermetic: no third-party plugins, phantoms and results in temporary folders."""
    saved = {k: os.environ.get(k) for k in ("XHBENCH_CACHE", "XHBENCH_RESULTS",
                                             "XHBENCH_LOAD_PLUGINS")}
    os.environ["XHBENCH_CACHE"] = os.environ.get("XHBENCH_BENCH_CACHE") or str(
        tmp_path_factory.mktemp("cache"))
    os.environ["XHBENCH_RESULTS"] = str(tmp_path_factory.mktemp("results"))
    os.environ["XHBENCH_LOAD_PLUGINS"] = ""
    from xhbench.plugins import reset_plugins

    reset_plugins()
    _MACHINE.update(machine())
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    reset_plugins()


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Path(os.environ["XHBENCH_CACHE"])


@pytest.fixture
def record_ratio(benchmark):
    """``record_ratio(name, ratio, target=..., **details)``: keep a ratio for the final
    table (and the benchmark's ``extra_info``). ``target``: the smallest acceptable ratio,
    or None when the figure is only reported."""

    def record(name: str, ratio: float, *, target: float | None = None, meaning: str = "",
               **details: Any) -> None:
        entry = {"name": name, "ratio": ratio, "target": target, "meaning": meaning,
                 "met": None if target is None else bool(ratio >= target), **details}
        _RATIOS.append(entry)
        benchmark.extra_info[name] = {k: v for k, v in entry.items() if k != "name"}

    return record


def interleave(benchmark, ours: Callable[[], Any], anchor: Callable[[], Any], rounds: int,
               warmup: Callable[[], Any] | None = None,
               ) -> tuple[list[float], list[float], Any, Any]:
    """Time ``anchor`` and ``ours`` in alternating rounds (anchor first in each round),
    after one untimed call of ``warmup`` (first-call costs: allocations, lazy imports).

    pytest-benchmark times ``ours`` (its row in the table); the anchor runs in the
    round's setup, timed here. Returns (anchor seconds, ours seconds, the last result of
    each).
    """
    anchor_times: list[float] = []
    ours_times: list[float] = []
    results: dict[str, Any] = {}

    def setup():
        started = time.perf_counter()
        results["anchor"] = anchor()
        anchor_times.append(time.perf_counter() - started)

    def target():
        started = time.perf_counter()
        results["ours"] = ours()
        ours_times.append(time.perf_counter() - started)
        return results["ours"]

    if warmup is not None:
        warmup()
    benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=1, warmup_rounds=0)
    return anchor_times, ours_times, results["anchor"], results["ours"]


def summary_ratio(anchor_times: list[float], ours_times: list[float]) -> dict[str, float]:
    """Speed ratios anchor / ours: of the fastest rounds (the least disturbed by other
    processes) and of the medians."""
    return {"anchor_min_s": min(anchor_times), "ours_min_s": min(ours_times),
            "anchor_median_s": statistics.median(anchor_times),
            "ours_median_s": statistics.median(ours_times),
            "ratio_min": min(anchor_times) / min(ours_times),
            "ratio_median": statistics.median(anchor_times) / statistics.median(ours_times)}


@pytest.fixture(scope="session")
def helpers():
    return type("Helpers", (), {"interleave": staticmethod(interleave),
                                "summary_ratio": staticmethod(summary_ratio)})


def pytest_sessionfinish(session, exitstatus):
    if session.config.getoption("--strict-targets", default=False) and exitstatus == 0 \
            and any(entry["met"] is False for entry in _RATIOS):
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _RATIOS:
        return
    if hasattr(os, "getloadavg"):
        _MACHINE["load_average_end"] = list(os.getloadavg())
    write = terminalreporter.write_line
    terminalreporter.section("xhbench ratios (anchor time / xhbench time unless stated)")
    m = _MACHINE
    write(f"machine: {m.get('nproc')} CPUs ({m.get('cpu')}), torch {m.get('torch')} with "
          f"{m.get('torch_threads')} threads, MONAI {m.get('monai')}, scikit-image "
          f"{m.get('skimage')}, CUDA {m.get('cuda')}; load average at start "
          f"{m.get('load_average_start')}, end {m.get('load_average_end')}")
    for entry in _RATIOS:
        target = "" if entry["target"] is None else (
            f"  target >= {entry['target']:g}: {'met' if entry['met'] else 'MISSED'}")
        write(f"{entry['name']:<44} {entry['ratio']:8.3f}{target}")
        if entry.get("meaning"):
            write(f"    {entry['meaning']}")
    path = config.getoption("--ratios-json")
    if path:
        Path(path).write_text(json.dumps({"machine": _MACHINE, "ratios": _RATIOS}, indent=2,
                                         default=str))
        write(f"ratios written to {path}")


@pytest.fixture(scope="session")
def brats_task(cache_dir):
    """``brats_task(size=32, train=4, test=1)``: the brats18_missing task (smoke profile)
    on a BraTS 2018 phantom of ``size``^3 voxels, written once per session."""
    from xhbench.datasets.brats18 import BraTS18
    from xhbench.harness.config import resolve
    from xhbench.tasks.brats18_missing import BraTS18Missing

    tasks = {}

    def make(size: int = 32, train: int = 4, test: int = 1):
        key = (size, train, test)
        if key not in tasks:
            config = resolve("task", BraTS18Missing.Config, BraTS18Missing.profiles, "smoke",
                             {"phantom_size": size, "phantom_train": train, "phantom_val": 0,
                              "phantom_test": test})
            data = BraTS18.open(None, cache_dir=cache_dir,
                                **BraTS18Missing.phantom_params(config))
            tasks[key] = BraTS18Missing(config, data)
        return tasks[key]

    return make


def smoke_method(name: str, spec, seed: int = 0, **overrides):
    """A registered method with its smoke profile on the CPU."""
    import torch

    from xhbench.harness.config import resolve
    from xhbench.plugins import get_plugins

    cls = get_plugins().registry.load("method", name)
    torch.manual_seed(seed)
    config = resolve(name, cls.Config, cls.profiles, "smoke", {},
                     {k: str(v) for k, v in overrides.items()})
    return cls(config, spec, torch.device("cpu"))


@pytest.fixture(scope="session")
def make_method():
    return smoke_method
