"""``xhbench evaluate``: score predictions made outside xhbench with a task's protocol."""

from __future__ import annotations

from pathlib import Path

import click

from ..harness.config import PROFILES, parse_assignments
from ..leaderboard.run_table import run_table
from ..results import default_results_root
from .console import console_log

__all__ = ["evaluate"]


@click.command("evaluate")
@click.option("--task", "-t", required=True, help="Task name (see `xhbench list tasks`).")
@click.option("--pred", "predictions", required=True,
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Folder of NIfTI predictions: <setting>/<case_id>.nii.gz (segmentation) or "
                   "<setting>/<case_id>_<TARGET>.nii.gz (synthesis); brats18_missing with "
                   "--set task.settings=full: <case_id>.nii.gz (the BraTS challenge layout); "
                   "a task with one setting also takes nnU-Net's flat <case_id>.nii.gz; "
                   "see docs/leaderboard.md.")
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Real data set folder; without it the task's phantom is used.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Results root (default: $XHBENCH_RESULTS or ./xhbench-results).")
@click.option("--method", "name",
              help="Name of the row, shown as external:NAME  [default: the --pred folder's "
                   "name]")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True,
              help="Task profile (chooses the phantom and case limits as `xhbench run` does).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a task option: task.KEY or KEY. Repeatable.")
@click.option("--limit", type=click.IntRange(min=1), help="Score only the first N test cases.")
@click.option("--skip-missing", is_flag=True,
              help="Score the cases that have all their files; the others are listed in "
                   "skipped.csv instead of stopping with an error.")
def evaluate(task, predictions, data_root, out, name, profile, assignments, limit,
             skip_missing):
    """Score a folder of external predictions on TASK; write a run folder."""
    from ..harness.external import EvaluateRequest, evaluate_predictions

    request = EvaluateRequest(task=task, predictions=predictions,
                              out=out or default_results_root(), name=name,
                              data_root=data_root, profile=profile,
                              overrides=parse_assignments(assignments), limit=limit,
                              skip_missing=skip_missing)
    with console_log():
        run_dir = evaluate_predictions(request)
    summary = run_dir.summary
    click.echo(f"Scored {summary['data']['n_cases']} case(s) as {summary['method']}"
               + (f"; {summary['data']['skipped_cases']} skipped (see skipped.csv)"
                  if summary["data"]["skipped_cases"] else ""))
    click.echo(run_table(run_dir))
    click.echo(f"Run folder: {run_dir.path}")
    click.echo(f"Leaderboard: xhbench leaderboard --task {task} --results {request.out}")
