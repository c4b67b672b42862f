"""``xhbench runs``: the run folders of a results root and their state."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ..results import STATES, default_results_root, find_runs

__all__ = ["runs"]

_RESULTS = click.option("--results", type=click.Path(file_okay=False, path_type=Path),
                        help="Results root  [default: $XHBENCH_RESULTS or ./xhbench-results]")


@click.group()
def runs() -> None:
    """List run folders by state (running, failed, interrupted, finished); clean up."""


def _runs(results: Path | None, task: str | None):
    root = results if results is not None else default_results_root()
    finished, unfinished = find_runs(root, task)
    return root, sorted([*finished, *unfinished], key=lambda run: run.path.name)


@runs.command("list")
@_RESULTS
@click.option("--task", help="Only this task's runs.")
@click.option("--status", "state", type=click.Choice(STATES), help="Only runs in this state.")
def list_runs(results: Path | None, task: str | None, state: str | None) -> None:
    """One line per run folder: state, task, method, folder, and the error of a failed run."""
    root, found = _runs(results, task)
    shown = 0
    for run in found:
        status = run.status
        if state and status["state"] != state:
            continue
        shown += 1
        task_name, method = run.path.parent.parent.name, run.path.parent.name
        error = f"  {status['error']} (traceback: {status['traceback']})" \
            if status.get("error") else ""
        click.echo(f"{status['state']:<11} {task_name:<20} {method:<16} {run.path}{error}")
    if not shown:
        click.echo(f"no run folders{f' in state {state}' if state else ''} under {root}",
                   err=True)


@runs.command("clean")
@_RESULTS
@click.option("--task", help="Only this task's runs.")
@click.option("--failed", is_flag=True, help="Remove the folders of failed runs.")
@click.option("--interrupted", is_flag=True,
              help="Remove the folders of runs whose process is gone (not resumable then).")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
def clean(results: Path | None, task: str | None, failed: bool, interrupted: bool,
          yes: bool) -> None:
    """Remove failed (and with --interrupted, interrupted) run folders."""
    if not (failed or interrupted):
        raise click.UsageError("say what to remove: --failed and/or --interrupted")
    states = {"failed"} if failed else set()
    states |= {"interrupted"} if interrupted else set()
    _, found = _runs(results, task)
    doomed = [run for run in found if run.state in states]
    if not doomed:
        click.echo(f"no {' or '.join(sorted(states))} run folders")
        return
    for run in doomed:
        click.echo(f"{run.state:<11} {run.path}")
    if not yes:
        click.confirm(f"Remove these {len(doomed)} run folder(s)?", abort=True)
    for run in doomed:
        shutil.rmtree(run.path)
    click.echo(f"removed {len(doomed)} run folder(s)")
