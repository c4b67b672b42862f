"""The ``xhbench`` command line: one module per verb."""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..errors import UsageError, XhbenchError
from ..plugins import get_plugins

__all__ = ["cli", "register_plugin_commands"]


class _Group(click.Group):
    """Turns xhbench's own errors into one-line messages with the right exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            raise click.UsageError(str(exc), ctx=ctx) from exc
        except XhbenchError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="xhbench")
def cli() -> None:
    """Benchmark methods on multi-modal 3D medical imaging tasks."""


def register_plugin_commands(group: click.Group) -> None:
    """Let each plugin add commands; a plugin whose hook raises is recorded, not fatal."""
    plugins = get_plugins()
    for impl in plugins.manager.hook.xhbench_register_commands.get_hookimpls():
        try:
            impl.function(cli=group)
        except Exception as exc:  # noqa: BLE001 - one broken plugin must not break the CLI
            plugins.plugins[impl.plugin_name].error = (
                f"xhbench_register_commands raised {type(exc).__name__}: {exc}")


def _add_builtin_commands() -> None:
    from .compare import compare
    from .datasets import datasets
    from .evaluate import evaluate
    from .figures import figures
    from .leaderboard import leaderboard
    from .listing import list_command
    from .report import report
    from .run import run
    from .sweep import sweep

    for command in (list_command, run, evaluate, leaderboard, compare, datasets, figures,
                    report, sweep):
        cli.add_command(command)


_add_builtin_commands()
register_plugin_commands(cli)
