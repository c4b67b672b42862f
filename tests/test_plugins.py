"""Registry and plugin loading: built-ins and third-party plugins through the same hooks."""

from __future__ import annotations

import pytest

import xhbench
from xhbench.errors import RegistrationError, UsageError
from xhbench.plugins import DEFAULT_PLUGINS, get_plugins, load_plugins
from xhbench.registry import Registration, Registry

from conftest import fake_method_plugin, plugin_module


def test_builtins_register_through_the_public_hooks():
    plugins = load_plugins()
    assert set(DEFAULT_PLUGINS) <= set(plugins.plugins)
    registry = plugins.registry
    assert registry.get("method", "swinunetr").plugin == "xhbench.methods.builtin"
    assert registry.get("task", "brats18_missing").meta["dataset"] == "brats18"
    assert "brats18_missing" in registry.tasks_supported_by(registry.get("method", "swinunetr"))
    assert plugins.errors == {}


def test_entry_point_plugin_is_loaded(entry_points):
    entry_points("fake", fake_method_plugin())
    plugins = load_plugins()
    entry = plugins.registry.get("method", "fake")
    assert entry.plugin == "fake"
    assert entry.load() is xhbench.testing.FakeMethod


def test_load_plugins_env_selects_entry_points(entry_points, monkeypatch):
    entry_points("fake", fake_method_plugin())
    monkeypatch.setenv("XHBENCH_LOAD_PLUGINS", "")
    assert "fake" not in load_plugins().plugins
    monkeypatch.setenv("XHBENCH_LOAD_PLUGINS", "other,fake")
    assert "fake" in load_plugins().plugins


def test_plugin_that_fails_to_import_is_isolated(entry_points):
    entry_points("broken", None, value="xhbench_no_such_module_anywhere")
    entry_points("fake", fake_method_plugin())
    plugins = load_plugins()
    assert "ModuleNotFoundError" in plugins.errors["broken"]
    assert plugins.registry.get("method", "fake")
    assert plugins.registry.get("method", "swinunetr")


def test_plugin_whose_hook_raises_is_isolated_and_rolled_back(entry_points):
    @xhbench.hookimpl
    def xhbench_register_methods(register):
        register("half", "xhbench.testing:FakeMethod", kinds=("segmentation",))
        raise RuntimeError("boom")

    entry_points("raiser", plugin_module("xhbench_raiser", xhbench_register_methods=xhbench_register_methods))
    plugins = load_plugins()
    assert "RuntimeError: boom" in plugins.errors["raiser"]
    with pytest.raises(UsageError):
        plugins.registry.get("method", "half")


@pytest.mark.parametrize("call, message", [
    (lambda r: r("Bad-Name", "a.b:C", kinds=("segmentation",)), "invalid name"),
    (lambda r: r("nokinds", "a.b:C"), "without kinds"),
    (lambda r: r("badtarget", "not a target", kinds=("segmentation",)), "expected 'package.module:attr'"),
    (lambda r: r("swinunetr", "a.b:C", kinds=("segmentation",)), "registered twice"),
])
def test_malformed_registration_is_named(entry_points, call, message):
    @xhbench.hookimpl
    def xhbench_register_methods(register):
        call(register)

    entry_points("malformed", plugin_module("xhbench_malformed", xhbench_register_methods=xhbench_register_methods))
    plugins = load_plugins()
    assert message in plugins.errors["malformed"]
    assert "malformed" not in {e.plugin for e in plugins.registry.entries("method")}


def test_misspelled_hook_is_reported(entry_points):
    @xhbench.hookimpl
    def xhbench_register_method(register):  # missing "s"
        pass

    entry_points("typo", plugin_module("xhbench_typo", xhbench_register_method=xhbench_register_method))
    assert "unknown hook" in load_plugins().errors["typo"]


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UsageError, match="Did you mean: swinunetr"):
        get_plugins().registry.get("method", "swinunet")


def test_target_that_fails_to_import_names_plugin_and_target():
    registry = Registry()
    registry.add(Registration("method", "ghost", "xhbench_ghost.module:Ghost", "ghostly",
                              meta={"kinds": ("segmentation",)}))
    with pytest.raises(RegistrationError, match="plugin 'ghostly'.*xhbench_ghost.module:Ghost"):
        registry.load("method", "ghost")


@pytest.mark.parametrize("entry, message", [
    (Registration("method", "fake", "xhbench.testing:FakeConfig", "p",
                  meta={"kinds": ("segmentation",)}), "not a subclass of xhbench.methods.base.Method"),
    (Registration("method", "other", "xhbench.testing:FakeMethod", "p",
                  meta={"kinds": ("segmentation",)}), "has name 'fake'; it was registered with name 'other'"),
    (Registration("task", "brats18_missing", "xhbench.testing:FakeMethod", "p",
                  meta={"kind": "segmentation", "dataset": "brats18"}), "not a subclass of xhbench.tasks.base.Task"),
    (Registration("task", "brats18_missing", "xhbench.tasks.brats18_missing:BraTS18Missing", "p",
                  meta={"kind": "synthesis", "dataset": "brats18"}), "has kind 'segmentation'"),
    (Registration("task", "brats18_missing", "xhbench.tasks.brats18_missing:BraTS18Missing", "p",
                  meta={"kind": "segmentation", "dataset": "brats23"}), "has dataset 'brats18'"),
    (Registration("dataset", "brats23", "xhbench.datasets.brats18:BraTS18", "p"), "has name 'brats18'"),
])
def test_loaded_class_must_match_its_registration(entry, message):
    registry = Registry()
    registry.add(entry)
    with pytest.raises(RegistrationError, match=f"plugin 'p'.*{message}"):
        registry.load(entry.kind, entry.name)


def test_aliases_resolve_and_collide():
    registry = Registry()
    meta = {"kinds": ("segmentation",)}
    registry.add(Registration("method", "alpha", "a.b:C", "p1", aliases=("a1",), meta=meta))
    assert registry.get("method", "a1").name == "alpha"
    with pytest.raises(RegistrationError, match="'p1'.*'p2'"):
        registry.add(Registration("method", "beta", "a.b:D", "p2", aliases=("a1",), meta=meta))


def test_every_hook_is_documented():
    from pathlib import Path

    from xhbench import hookspecs

    docs = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("xhbench_")]
    assert len(hooks) == 4
    for name in hooks:
        parameters = getattr(hookspecs, name).__code__.co_varnames
        assert f"## {name}({', '.join(parameters)})" in docs, name
