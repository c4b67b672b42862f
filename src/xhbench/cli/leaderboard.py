"""``xhbench leaderboard``: tables from the results store."""

from __future__ import annotations

import difflib
from pathlib import Path

import click

from ..results import default_results_root
from ..errors import UsageError
from ..leaderboard import FORMATS, build_leaderboard, render, skipped_lines
from ..leaderboard.agreement import rank_agreement, render_agreement
from ..leaderboard.paired import attach_paired, paired_comparison
from ..leaderboard.diagnostics import diagnostics_table, render_diagnostics
from ..leaderboard.paper_tables import render_paper_table
from ..leaderboard.select import DIAGNOSTICS, render_html, select_columns
from ..plugins import get_plugins

__all__ = ["leaderboard"]


@click.command("leaderboard")
@click.option("--task", required=True, help="Task name.")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path),
              help="Results root  [default: $XHBENCH_RESULTS or ./xhbench-results]")
@click.option("--format", "fmt", type=click.Choice([*FORMATS, "html"]), default="markdown",
              show_default=True, help="Output format; json is the input of `xhbench compare`; "
                                      "html a standalone page.")
@click.option("--columns", metavar="NAME[,NAME...]",
              help="Only these targets, metrics or groups (e.g. WT,ET or dice); "
                   "'diagnostics' adds the diagnostics the runs recorded, per row.")
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
@click.option("--agreement", metavar="METRIC",
              help="Add, per target, Kendall's tau and Spearman's rho between METRIC's ranking "
                   "of the rows (e.g. ssim) and each other shown metric's (e.g. "
                   "downstream_drop_WT, suvmax_error); markdown.")
def leaderboard(task: str, results: Path | None, fmt: str, columns: str | None, by: str | None,
                cost: bool, diagnostics: bool, allow_mixed_versions: bool, table: str | None,
                with_reported: bool, against: str | None, agreement: str | None) -> None:
    """Aggregate the finished runs of a task into a table."""
    root = results if results is not None else default_results_root()
    _require_task_folder(root, task)
    board = build_leaderboard(root, task, by=(by,) if by else (),
                              allow_mixed_versions=allow_mixed_versions)
    if against:
        _require_method(board, against)
    selected = [name.strip() for name in (columns or "").split(",") if name.strip()]
    board = select_columns(board, selected)
    if agreement:
        if fmt != "markdown" or diagnostics or table or with_reported:
            raise UsageError("--agreement prints with the plain markdown table")
        agreement_text = render_agreement(rank_agreement(board, agreement))
    with_diagnostics = DIAGNOSTICS in selected
    paired = paired_comparison(board, against) if against else None
    for line in skipped_lines(board):
        click.echo(f"note: {line}", err=True)
    if diagnostics or selected == [DIAGNOSTICS]:
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
    if fmt == "html":
        if paired is not None:
            raise UsageError("--against prints as markdown or json")
        click.echo(render_html(board, cost=cost, diagnostics=diagnostics_table(board)
                               if with_diagnostics else None), nl=False)
        return
    if with_diagnostics and fmt != "markdown":
        raise UsageError("--columns with diagnostics and metrics prints as markdown or html; "
                         "--diagnostics alone prints json and csv")
    click.echo(attach_paired(render(board, fmt, cost=cost), fmt, paired), nl=False)
    if agreement:
        click.echo(agreement_text, nl=False)
    if with_diagnostics:
        click.echo("\nDiagnostics (mean over the row's runs):\n\n"
                   + render_diagnostics(board, "markdown"), nl=False)

def _require_task_folder(root: Path, task: str) -> None:
    """A clear usage error for a missing results folder or a task without results (with
    the closest task names that have results or are registered)."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"results folder {root} does not exist; pass --results or set "
                         "$XHBENCH_RESULTS (runs write to ./xhbench-results by default)")
    if (root / task).is_dir():
        return
    present = sorted(p.name for p in root.iterdir() if p.is_dir())
    registered = [entry.name for entry in get_plugins().registry.entries("task")]
    close = difflib.get_close_matches(task, sorted({*present, *registered}), n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UsageError(f"no finished runs of task {task!r} under {root} (tasks with results: "
                     f"{', '.join(present) or 'none'}).{hint}")


def _require_method(board, method: str) -> None:
    methods = sorted(set(board.rows["method"]))
    if method not in methods:
        close = difflib.get_close_matches(method, methods, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(f"--against {method}: no finished run of that method for task "
                         f"{board.task} (methods: {', '.join(methods)}).{hint}")
