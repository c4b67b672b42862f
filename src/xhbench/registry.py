"""Name -> registration tables for data sets, tasks and methods.

A registration stores a class or a ``"module:attr"`` string; strings are
imported only when the object is first needed, so listing never imports torch.
"""

from __future__ import annotations

import difflib
import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from .errors import RegistrationError, UsageError

__all__ = ["KINDS", "Registration", "Registry"]

KINDS = ("dataset", "task", "method")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_REQUIRED_META = {"task": ("kind", "dataset"), "method": ("kinds",), "dataset": ()}


@dataclass(frozen=True)
class Registration:
    """One registered object and what can be said about it without importing it."""

    kind: str
    name: str
    target: Any
    plugin: str
    description: str = ""
    aliases: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """Import (once) and return the registered object."""
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attr = self.target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise RegistrationError(
                f"{self.kind} {self.name!r} from plugin {self.plugin!r} failed to load "
                f"{self.target!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._check(obj)
        object.__setattr__(self, "target", obj)
        return obj

    def _check(self, obj: Any) -> None:
        """A RegistrationError unless ``obj`` is a class of this kind (a Dataset, Task or
        Method subclass) whose ``name`` is the registered one and, for a task, whose
        ``kind`` and ``dataset`` are the registered ones."""
        from .datasets.base import Dataset
        from .methods.base import Method
        from .tasks.base import Task

        base = {"dataset": Dataset, "task": Task, "method": Method}[self.kind]
        where = f"{self.kind} {self.name!r} from plugin {self.plugin!r} ({self.target!r})"
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise RegistrationError(f"{where} is not a subclass of "
                                    f"{base.__module__}.{base.__name__}")
        declared = {"name": self.name}
        if self.kind == "task":
            declared.update(kind=self.meta["kind"], dataset=self.meta["dataset"])
        for attr, value in declared.items():
            if getattr(obj, attr, None) != value:
                raise RegistrationError(f"{where} has {attr} {getattr(obj, attr, None)!r}; "
                                        f"it was registered with {attr} {value!r}")


class Registry:
    """The registrations of every loaded plugin, by kind and name."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        self._aliases: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}

    def register_callback(self, kind: str, plugin: str) -> Callable[..., None]:
        """Return the ``register`` function handed to one plugin's hook."""

        def register(
            name: str,
            target: Any,
            *,
            description: str = "",
            aliases: tuple[str, ...] | list[str] = (),
            **meta: Any,
        ) -> None:
            self.add(
                Registration(kind, name, target, plugin, description, tuple(aliases), dict(meta))
            )

        return register

    def add(self, entry: Registration) -> None:
        """Validate and store one registration."""
        kind, name = entry.kind, entry.name
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistrationError(
                f"plugin {entry.plugin!r} registered a {kind} with invalid name {name!r} "
                "(lowercase letters, digits and _ only)"
            )
        if isinstance(entry.target, str) and not _TARGET.match(entry.target):
            raise RegistrationError(
                f"plugin {entry.plugin!r} registered {kind} {name!r} with target "
                f"{entry.target!r}; expected 'package.module:attr' or a class"
            )
        missing = [key for key in _REQUIRED_META[kind] if key not in entry.meta]
        if missing:
            raise RegistrationError(
                f"plugin {entry.plugin!r} registered {kind} {name!r} without {', '.join(missing)}"
            )
        for key in (name, *entry.aliases):
            owner = self._owner(kind, key)
            if owner is not None:
                raise RegistrationError(
                    f"{kind} name {key!r} registered twice: by plugin {owner.plugin!r} "
                    f"and by plugin {entry.plugin!r}"
                )
        self._entries[kind][name] = entry
        for alias in entry.aliases:
            self._aliases[kind][alias] = name

    def remove_plugin(self, plugin: str) -> None:
        """Drop everything one plugin registered (after its hook failed part-way)."""
        for kind in KINDS:
            names = [n for n, e in self._entries[kind].items() if e.plugin == plugin]
            for name in names:
                del self._entries[kind][name]
            self._aliases[kind] = {
                alias: target for alias, target in self._aliases[kind].items() if target not in names
            }

    def _owner(self, kind: str, key: str) -> Registration | None:
        name = self._aliases[kind].get(key, key)
        return self._entries[kind].get(name)

    def get(self, kind: str, name: str) -> Registration:
        """Look a name (or alias) up; an unknown name suggests close matches."""
        entry = self._owner(kind, name)
        if entry is None:
            known = sorted([*self._entries[kind], *self._aliases[kind]])
            close = difflib.get_close_matches(name, known, n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            listing = f" Known {kind}s: {', '.join(sorted(self._entries[kind])) or 'none'}."
            raise UsageError(f"unknown {kind} {name!r}.{hint}{listing}")
        return entry

    def load(self, kind: str, name: str) -> Any:
        """Return the registered object itself."""
        return self.get(kind, name).load()

    def entries(self, kind: str) -> Iterator[Registration]:
        """Registrations of one kind, sorted by name."""
        return iter(sorted(self._entries[kind].values(), key=lambda e: e.name))

    def tasks_supported_by(self, method: Registration) -> list[str]:
        """Names of the registered tasks that a method can run."""
        kinds = set(method.meta.get("kinds", ()))
        only = method.meta.get("tasks")
        return [
            task.name
            for task in self.entries("task")
            if task.meta.get("kind") in kinds and (only is None or task.name in only)
        ]
