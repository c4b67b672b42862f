"""The ``xhbench`` command line: one module per verb."""

from __future__ import annotations

import sys
import tempfile
import traceback
from pathlib import Path

import click

from .. import __version__
from ..errors import UsageError, XhbenchError
from ..plugins import get_plugins

__all__ = ["cli", "register_plugin_commands"]


class _Group(click.Group):
    """Turns every error into one ``Error:`` line: xhbench's usage errors exit 2, its other
    errors 1; an unexpected exception exits 1 naming the file that holds its traceback
    (the run's ``log.txt`` when a run failed, else a file in the temporary folder)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            _fail(str(exc), 2)
        except XhbenchError as exc:
            _fail(str(exc), 1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that catches everything
            _fail(f"{type(exc).__name__}: {exc}".splitlines()[0]
                  + f" (traceback in {_write_traceback(exc)})", 1)


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _write_traceback(exc: BaseException) -> Path:
    """Write ``exc``'s traceback to a new file in the temporary folder; return its path."""
    handle = tempfile.NamedTemporaryFile("w", prefix="xhbench-traceback-", suffix=".txt",
                                         delete=False)
    with handle:
        traceback.print_exception(exc, file=handle)
    return Path(handle.name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    from .runs import runs
    from .sweep import sweep

    for command in (list_command, run, evaluate, leaderboard, compare, datasets, figures,
                    report, sweep, runs):
        cli.add_command(command)


_add_builtin_commands()
register_plugin_commands(cli)
