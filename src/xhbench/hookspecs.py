"""Hook specifications: the whole plugin API of xhbench.

Every hook is registration only: it receives a ``register`` callback and returns
nothing. Built-in tasks, data sets and methods use exactly these hooks, from the
modules listed in :data:`xhbench.plugins.DEFAULT_PLUGINS`.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("xhbench")
hookimpl = pluggy.HookimplMarker("xhbench")


@hookspec
def xhbench_register_datasets(register):
    """Register data sets.

    Args:
        register: ``register(name, target, *, description, aliases=(), **meta)``.
            ``name`` is a lowercase snake_case id. ``target`` is a
            :class:`xhbench.datasets.Dataset` subclass or a ``"module:attr"``
            string that is imported on first use, so that registering costs
            nothing. ``description`` is one line for ``xhbench list``; ``meta``
            holds further JSON-serialisable facts shown by ``list --json``.
    """


@hookspec
def xhbench_register_tasks(register):
    """Register tasks (evaluation protocols).

    Args:
        register: as for :func:`xhbench_register_datasets`, with a
            :class:`xhbench.tasks.Task` target. ``meta`` must include
            ``kind`` (``"segmentation"`` or ``"synthesis"``) and ``dataset``
            (the registered data-set name), so that listing needs no import.
    """


@hookspec
def xhbench_register_methods(register):
    """Register methods (models with their training recipe).

    Args:
        register: as for :func:`xhbench_register_datasets`, with a
            :class:`xhbench.methods.Method` target. ``meta`` must include
            ``kinds``, the task kinds the method supports; it may include
            ``tasks``, a tuple of task names that narrows support further.
    """


@hookspec
def xhbench_register_commands(cli):
    """Add commands to the ``xhbench`` command line.

    Args:
        cli: the top-level :class:`click.Group`; call ``cli.command()`` or
            ``cli.add_command()`` on it.
    """
