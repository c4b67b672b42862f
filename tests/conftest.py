"""Hermetic tests: no installed third-party plugins, caches and results in tmp."""

from __future__ import annotations

import sys
import types
from importlib import metadata
from pathlib import Path

import pytest
import torch

import xhbench
from xhbench.plugins import reset_plugins


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("XHBENCH_LOAD_PLUGINS", "")
    monkeypatch.setenv("XHBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("XHBENCH_RESULTS", str(tmp_path_factory.mktemp("results")))
    reset_plugins()
    yield
    reset_plugins()


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test: tiny networks run faster than on two threads
    that wait for each other on shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def phantom_cache(tmp_path_factory) -> Path:
    """A cache folder of the test module's own, for the phantoms it opens."""
    return tmp_path_factory.mktemp("cache")


def plugin_module(name: str, **attrs) -> types.ModuleType:
    """A module object standing in for an installed plugin."""
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def fake_method_plugin(name: str = "fake", kinds: tuple[str, ...] = ("segmentation",)):
    """A plugin module registering :class:`xhbench.testing.FakeMethod` as ``name``."""

    @xhbench.hookimpl
    def xhbench_register_methods(register):
        register(name, "xhbench.testing:FakeMethod", description="threshold test method",
                 kinds=kinds)

    return plugin_module(f"xhbench_{name}", xhbench_register_methods=xhbench_register_methods)


@pytest.fixture
def entry_points(monkeypatch):
    """Install fake entry points of the ``xhbench`` group: ``add(name, module)``."""
    installed: list[metadata.EntryPoint] = []

    def add(name: str, module: types.ModuleType | None, value: str | None = None):
        if module is not None:
            monkeypatch.setitem(sys.modules, module.__name__, module)
        installed.append(metadata.EntryPoint(name, value or module.__name__, "xhbench"))
        reset_plugins()

    real = metadata.entry_points

    def fake(group=None, **kwargs):
        if group != "xhbench":  # other libraries (fsspec, mlflow) see the real ones
            return real(group=group, **kwargs) if group else real(**kwargs)
        return [p for p in installed if p.group == group]

    monkeypatch.setattr("xhbench.plugins.metadata.entry_points", fake)
    monkeypatch.delenv("XHBENCH_LOAD_PLUGINS")
    return add
