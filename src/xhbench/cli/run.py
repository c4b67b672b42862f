"""``xhbench run``: train and evaluate one method on one task."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import click

from ..errors import UsageError
from ..harness.config import PROFILES, parse_assignments
from ..leaderboard.run_table import run_table
from ..results import default_results_root
from ..tracking import TRACKERS
from .console import console_log

__all__ = ["run"]


@click.command()
@click.option("--task", "-t", required=True, help="Task name (see `xhbench list tasks`).")
@click.option("--method", "-m", required=True, help="Method name (see `xhbench list methods`).")
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Real data set folder; without it the phantom is used.")
@click.option("--profile", type=click.Choice(PROFILES), default="default", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", help="cpu, cuda or cuda:N (default: cuda when present).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              help="Results root (default: $XHBENCH_RESULTS or ./xhbench-results).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override an option: task.KEY, method.KEY or KEY when unique. Repeatable.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False,
              exists=True), help="TOML or JSON file with [task] and [method] tables.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N test cases.")
@click.option("--pretrain-data-root",
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Real pre-training corpus (the task's pretraining data set); default phantom.")
@click.option("--resume", is_flag=True,
              help="Continue the newest unfinished run of the same settings and seed.")
@click.option("--deterministic", is_flag=True,
              help="Deterministic CUDA kernels (slower); CPU runs are repeatable without it.")
@click.option("--skip-bad-cases", is_flag=True,
              help="Skip cases that cannot be loaded; each is listed in skipped.csv.")
@click.option("--track", "trackers", multiple=True, type=click.Choice(sorted(TRACKERS)),
              help="After the run, log its folder to mlflow ($MLFLOW_TRACKING_URI, else "
                   "./mlruns) or tensorboard (RUN/tensorboard). Repeatable; needs "
                   "pip install 'xhbench[track]'.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Data-parallel processes on this machine (one per GPU; gloo on CPU): "
                   "delegates to `torchrun --standalone --nproc-per-node N`.")
@click.option("--dry-run", is_flag=True,
              help="Print the resolved config, the data, the budget and an estimated time; "
                   "write nothing.")
def run(task, method, data_root, profile, seed, device, out, assignments, config_file, limit,
        pretrain_data_root, resume, deterministic, skip_bad_cases, nproc, trackers, dry_run):
    """Train and evaluate METHOD on TASK; write a run folder."""
    from ..harness import distributed
    from ..harness.runner import RunRequest, execute, plan
    from ..tracking import require, track

    for tracker in trackers:
        require(tracker)
    request = RunRequest(task=task, method=method, out=out or default_results_root(),
                         data_root=data_root, profile=profile, seed=seed, device=device,
                         overrides=parse_assignments(assignments), config_file=config_file,
                         limit=limit, skip_bad_cases=skip_bad_cases,
                         pretrain_data_root=pretrain_data_root, deterministic=deterministic,
                         resume=resume)
    validated = plan(request)
    if dry_run:
        from ..harness.dry_run import describe

        click.echo(describe(validated))
        return
    if nproc > 1:
        if distributed.launched_by_torchrun():
            raise UsageError("--nproc: this process was already started by torchrun")
        distributed.require_distributed_training(validated.method_cls, method)
        sys.exit(_torchrun(nproc, click.get_current_context(), request.out))
    # under torchrun, rank 0 speaks for all
    with console_log(logging.WARNING if int(os.environ.get("RANK", "0")) > 0 else logging.NOTSET):
        run_dir = execute(validated)
    if int(os.environ.get("RANK", "0")) > 0:
        return
    click.echo(run_table(run_dir))
    click.echo(f"Run folder: {run_dir.path}")
    click.echo(f"Leaderboard: xhbench leaderboard --task {task} --results {request.out}")
    for tracker in trackers:
        click.echo(f"Tracked ({tracker}): {track(run_dir.path, tracker)}")


def _torchrun(nproc: int, ctx: click.Context, out: Path) -> int:
    """Run this command again under ``torchrun --standalone --nproc-per-node nproc``
    (a free rendezvous port on this machine); return torchrun's exit code."""
    args = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in ("nproc", "out") or value is None or value is False or value == ():
            continue
        option = max(param.opts, key=len)
        if value is True:
            args.append(option)
        else:
            for item in (value if isinstance(value, tuple) else (value,)):
                args += [option, str(item)]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", str(nproc), "-m", "xhbench", "run", *args, "--out", str(out)]
    return subprocess.run(command, check=False).returncode
