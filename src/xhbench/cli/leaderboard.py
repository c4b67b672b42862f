"""``xhbench leaderboard``: tables from the results store."""

from __future__ import annotations

from pathlib import Path

import click

from ..harness.store import default_results_root
from ..leaderboard import FORMATS, build_leaderboard, render, skipped_lines

__all__ = ["leaderboard"]


@click.command("leaderboard")
@click.option("--task", required=True, help="Task name.")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path),
              help="Results root  [default: $XHBENCH_RESULTS or ./xhbench-results]")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown",
              show_default=True, help="Output format; json is the input of `xhbench compare`.")
@click.option("--by", type=click.Choice(["setting"]),
              help="Keep settings apart instead of averaging each case over them.")
@click.option("--cost", is_flag=True,
              help="Add parameters, peak memory, train seconds and seconds per case.")
@click.option("--allow-mixed-versions", is_flag=True,
              help="Show runs of different task versions as separate rows instead of refusing.")
def leaderboard(task: str, results: Path | None, fmt: str, by: str | None, cost: bool,
                allow_mixed_versions: bool) -> None:
    """Aggregate the finished runs of a task into a table."""
    root = results if results is not None else default_results_root()
    board = build_leaderboard(root, task, by=(by,) if by else (),
                              allow_mixed_versions=allow_mixed_versions)
    for line in skipped_lines(board):
        click.echo(f"note: {line}", err=True)
    click.echo(render(board, fmt, cost=cost), nl=False)
