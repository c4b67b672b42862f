"""``xhbench leaderboard``: tables from the results store."""

from __future__ import annotations

from pathlib import Path

import click

from ..results import default_results_root
from ..errors import UsageError
from ..leaderboard import FORMATS, build_leaderboard, render, skipped_lines
from ..leaderboard.paired import attach_paired, paired_comparison
from ..leaderboard.diagnostics import render_diagnostics
from ..leaderboard.paper_tables import render_paper_table

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
@click.option("--diagnostics", is_flag=True,
              help="Instead of metrics, per row: the variant and the diagnostics its runs "
                   "recorded (e.g. ours' prior_contribution, xprime_variance_ratio).")
@click.option("--allow-mixed-versions", is_flag=True,
              help="Show runs of different task versions as separate rows instead of refusing.")
@click.option("--table", help="Shape the table like the paper's, e.g. table3 or table10.")
@click.option("--with-reported", is_flag=True,
              help="Show the paper's reported rows beside the measured ones (implies the "
                   "task's first paper table unless --table is given).")
@click.option("--against", metavar="METHOD",
              help="Add the paired per-case difference of every other method to METHOD: "
                   "bootstrap 95% CI, Wilcoxon p, Holm-corrected p and a verdict "
                   "(markdown or json).")
def leaderboard(task: str, results: Path | None, fmt: str, by: str | None, cost: bool,
                diagnostics: bool, allow_mixed_versions: bool, table: str | None, with_reported: bool,
                against: str | None) -> None:
    """Aggregate the finished runs of a task into a table."""
    root = results if results is not None else default_results_root()
    board = build_leaderboard(root, task, by=(by,) if by else (),
                              allow_mixed_versions=allow_mixed_versions)
    paired = paired_comparison(board, against) if against else None
    for line in skipped_lines(board):
        click.echo(f"note: {line}", err=True)
    if diagnostics:
        click.echo(render_diagnostics(board, fmt), nl=False)
        return
    if table or with_reported:
        if fmt != "markdown":
            raise UsageError("paper-shaped tables (--table, --with-reported) print as markdown")
        name = table or next(iter(board.tables), None)
        if name is None:
            raise UsageError(f"task {task} declares no paper tables")
        click.echo(attach_paired(render_paper_table(board, name, with_reported=with_reported),
                                 fmt, paired), nl=False)
        return
    click.echo(attach_paired(render(board, fmt, cost=cost), fmt, paired), nl=False)
