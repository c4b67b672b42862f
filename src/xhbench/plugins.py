"""Plugin loading: built-ins and installed entry points through the same hooks.

Each third-party plugin loads inside its own guard: one that fails to import, or
whose hook raises or registers something malformed, is recorded in
:attr:`PluginSet.errors` and shown by ``xhbench list plugins``; everything else
keeps working.

``XHBENCH_LOAD_PLUGINS`` selects entry points: unset loads all of them, an empty
string loads none, ``a,b`` loads only those. Built-ins always load.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import RegistrationError
from .registry import Registry

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "PluginSet", "get_plugins", "reset_plugins"]

ENTRY_POINT_GROUP = "xhbench"
DEFAULT_PLUGINS = (
    "xhbench.datasets.builtin",
    "xhbench.tasks.builtin",
    "xhbench.methods.builtin",
)
_HOOKS = {
    "dataset": "xhbench_register_datasets",
    "task": "xhbench_register_tasks",
    "method": "xhbench_register_methods",
}


@dataclass
class PluginInfo:
    """What ``xhbench list plugins`` shows for one plugin."""

    name: str
    source: str  # "builtin" or the distribution name and version
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class PluginSet:
    """The plugin manager, the registry it filled and each plugin's status."""

    manager: pluggy.PluginManager
    registry: Registry
    plugins: dict[str, PluginInfo]

    @property
    def errors(self) -> dict[str, str]:
        return {name: info.error for name, info in self.plugins.items() if info.error}


_current: PluginSet | None = None


def get_plugins() -> PluginSet:
    """Load plugins once per process and return them."""
    global _current
    if _current is None:
        _current = load_plugins()
    return _current


def reset_plugins() -> None:
    """Forget loaded plugins (tests; after changing ``XHBENCH_LOAD_PLUGINS``)."""
    global _current
    _current = None


def _selected_entry_points() -> list[metadata.EntryPoint]:
    wanted = os.environ.get("XHBENCH_LOAD_PLUGINS")
    points = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    if wanted is None:
        return points
    names = {name.strip() for name in wanted.split(",") if name.strip()}
    return [point for point in points if point.name in names]


def _source(point: metadata.EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else point.value


def load_plugins(extra: dict[str, object] | None = None) -> PluginSet:
    """Build a plugin manager from built-ins, selected entry points and ``extra``.

    Args:
        extra: plugin objects by name, registered after the entry points (tests
            and ``--plugins-dir`` use it).
    """
    manager = pluggy.PluginManager("xhbench")
    manager.add_hookspecs(hookspecs)
    plugins: dict[str, PluginInfo] = {}
    for module_name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
        plugins[module_name] = PluginInfo(module_name, "builtin")
    for point in _selected_entry_points():
        info = plugins.setdefault(point.name, PluginInfo(point.name, _source(point)))
        try:
            manager.register(point.load(), name=point.name)
        except Exception as exc:  # noqa: BLE001 - isolate a broken plugin
            info.error = f"failed to load {point.value!r}: {type(exc).__name__}: {exc}"
    for name, plugin in (extra or {}).items():
        manager.register(plugin, name=name)
        plugins[name] = PluginInfo(name, "extra")
    _drop_invalid_hookimpls(manager, plugins)
    registry = Registry()
    for kind, hook_name in _HOOKS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            info = plugins[impl.plugin_name]
            if info.error:
                continue
            info.hooks.append(hook_name)
            try:
                impl.function(register=registry.register_callback(kind, impl.plugin_name))
            except Exception as exc:  # noqa: BLE001 - isolate a broken plugin
                if impl.plugin_name in DEFAULT_PLUGINS:
                    raise
                registry.remove_plugin(impl.plugin_name)
                info.error = str(exc) if isinstance(exc, RegistrationError) else (
                    f"{hook_name} raised {type(exc).__name__}: {exc}"
                )
    return PluginSet(manager, registry, plugins)


def _drop_invalid_hookimpls(manager: pluggy.PluginManager, plugins: dict[str, PluginInfo]) -> None:
    """Unregister plugins that implement hooks xhbench does not define (typos)."""
    while True:
        try:
            manager.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            name = manager.get_name(exc.plugin)
            plugins[name].error = f"implements an unknown hook: {exc}"
            manager.unregister(exc.plugin)
