"""``xhbench sweep``: run the grid tasks x methods x seeds, skipping finished runs."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import UsageError
from ..harness.config import PROFILES
from ..results import default_results_root

__all__ = ["sweep"]


def _data_roots(values: tuple[str, ...], tasks: list[str]) -> dict[str, Path]:
    """``TASK=PATH`` entries, or one bare ``PATH`` when the sweep has one task."""
    roots = {}
    for value in values:
        task, sep, path = value.partition("=")
        if not sep:
            if len(tasks) != 1:
                raise UsageError(f"--data-root {value}: with several tasks write TASK=PATH")
            task, path = tasks[0], value
        if task not in tasks:
            raise UsageError(f"--data-root {value}: {task!r} is not one of --tasks")
        if not Path(path).is_dir():
            raise UsageError(f"--data-root {value}: folder {path} does not exist")
        roots[task] = Path(path)
    return roots


def _options(values: tuple[str, ...]) -> dict[str, object]:
    """``KEY=VALUE`` executor options; integers and floats as numbers."""
    options: dict[str, object] = {}
    for value in values:
        key, sep, text = (part.strip() for part in value.partition("="))
        if not sep or not key:
            raise UsageError(f"--executor-option expects KEY=VALUE, got {value!r}")
        for kind in (int, float):
            try:
                options[key] = kind(text)
                break
            except ValueError:
                continue
        else:
            options[key] = text
    return options


@click.command("sweep")
@click.option("--tasks", required=True, metavar="T1,T2", help="Comma-separated task names.")
@click.option("--methods", required=True, metavar="M1,M2", help="Comma-separated method names.")
@click.option("--seeds", default="0", show_default=True, metavar="0,1,2",
              help="Comma-separated seeds; a-b is a range.")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True)
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override an option in every run (as in `xhbench run`). Repeatable.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False,
              exists=True), help="TOML or JSON file with [task] and [method] tables.")
@click.option("--data-root", "data_roots", multiple=True, metavar="[TASK=]PATH",
              help="Real data of a task (bare PATH with one task); default the phantoms.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N test cases.")
@click.option("--device", help="Device of every run (default: cuda when present).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Data-parallel processes per run (`xhbench run --nproc`).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Results root (default: $XHBENCH_RESULTS or ./xhbench-results).")
@click.option("--executor", type=click.Choice(["local", "submitit"]), default="local",
              show_default=True, help="local: a process pool on this machine; submitit: Slurm "
              "jobs (pip install 'xhbench[cluster]').")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at the same time (local pool size; Slurm array parallelism).")
@click.option("--executor-option", "executor_options", multiple=True, metavar="KEY=VALUE",
              help="submitit parameter, e.g. slurm_partition=gpu, timeout_min=720, "
                   "gpus_per_node=1, cpus_per_task=8, mem_gb=64; cluster=local runs the "
                   "jobs on this machine. Repeatable.")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue unfinished runs of the same settings and seed.")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="submitit: wait for the jobs and report them (else submit and return).")
@click.option("--dry-run", is_flag=True, help="List what would run and what is finished.")
def sweep(tasks, methods, seeds, profile, assignments, config_file, data_roots, limit, device,
          nproc, out, executor, workers, executor_options, resume, wait, dry_run):
    """Run every TASK x METHOD x SEED not finished yet under the results root.

    Each run is an `xhbench run` process; a failed run is reported by name and the
    others go on. Aggregate with `xhbench leaderboard --task T --results OUT`.
    """
    from ..harness import sweep as sw

    out = out or default_results_root()
    task_list, method_list = sw.parse_list(tasks), sw.parse_list(methods)
    if executor_options and executor != "submitit":
        raise UsageError("--executor-option applies to --executor submitit")
    grid = sw.expand(task_list, method_list, sw.parse_seeds(seeds), out=out, profile=profile,
                     assignments=assignments, config_file=config_file,
                     data_roots=_data_roots(data_roots, task_list), limit=limit,
                     device=device, nproc=nproc, resume=resume)
    for task, method in grid.unsupported:
        click.echo(f"note: {method} does not support {task}; left out", err=True)
    finished = sw.finished_runs(out, task_list)
    todo = []
    for run in grid.runs:
        if run.key in finished:
            click.echo(f"skipped   {run.name}: finished in {finished[run.key]}")
        else:
            todo.append(run)
    skipped = len(grid.runs) - len(todo)
    if dry_run:
        for run in todo:
            click.echo(f"would run {run.name}: xhbench run {' '.join(run.args)}")
        return
    if not todo:
        click.echo(f"nothing to run: {skipped} finished")
        _leaderboard_hint(task_list, out)
        return
    log_dir = sw.new_log_dir(out)
    click.echo(f"{len(todo)} runs to do ({skipped} finished); logs in {log_dir}")

    def report(outcome) -> None:
        if outcome.status == "failed":
            click.echo(f"FAILED    {outcome.run.name}: {outcome.detail} (log: {outcome.log})",
                       err=True)
        else:
            click.echo(f"{outcome.status:<9} {outcome.run.name}: {outcome.detail}")

    outcomes = sw.dispatch(todo, log_dir=log_dir, executor=executor, workers=workers,
                           nproc=nproc, options=_options(executor_options), wait=wait,
                           on_outcome=report)
    counts = {status: sum(o.status == status for o in outcomes) for status in sw.STATUSES}
    click.echo(f"{counts['finished']} finished, {skipped} skipped, {counts['failed']} failed"
               + (f", {counts['submitted']} submitted" if counts["submitted"] else ""))
    failed = [o.run.name for o in outcomes if o.status == "failed"]
    if failed:
        click.echo(f"failed runs: {', '.join(failed)}", err=True)
    _leaderboard_hint(task_list, out)
    if failed:
        raise SystemExit(1)


def _leaderboard_hint(tasks: list[str], out: Path) -> None:
    for task in tasks:
        click.echo(f"Leaderboard: xhbench leaderboard --task {task} --results {out}")
