"""Sweeps: the grid tasks x methods x seeds, finished runs skipped, the rest dispatched.

Every run of a sweep is an ordinary ``python -m xhbench run ...`` process writing
into the sweep's results root, so a sweep's results are the same run folders a
hand-started run writes and ``xhbench leaderboard`` aggregates them as usual.
Dispatch goes through an existing engine, never a scheduler of our own:

* ``local``: a :class:`concurrent.futures.ProcessPoolExecutor` of ``workers``
  processes, each starting one run at a time as a child process. A run that
  fails, or dies outright (killed for memory, a segfault), fails only itself: the
  pool and the other runs go on.
* ``submitit``: one Slurm job per run (submitted as a job array) through
  `submitit <https://github.com/facebookincubator/submitit>`_, an optional extra
  (``pip install 'xhbench[cluster]'``). See ``docs/scale-out.md`` for why
  submitit and not Ray.

A run is finished when a run folder under the results root has a summary with the
same task, method, seed, settings (``Plan.config_hash``) and data root; such runs
are skipped. Unfinished ones are continued (``xhbench run --resume``) by default.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Outcome", "SweepRun", "dispatch", "expand", "finished_runs", "parse_list",
           "parse_seeds"]

STATUSES = ("finished", "skipped", "failed", "submitted")


@dataclass(frozen=True)
class SweepRun:
    """One cell of the grid: the ``xhbench run`` arguments and what identifies its result."""

    task: str
    method: str
    seed: int
    config_hash: str
    data_root: str | None
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.task}/{self.method}/seed{self.seed}"

    @property
    def key(self) -> tuple:
        return (self.task, self.method, self.config_hash, self.seed, self.data_root)

    @property
    def log_name(self) -> str:
        return f"{self.task}.{self.method}.seed{self.seed}.log"


@dataclass
class Outcome:
    """What became of one run: ``status`` is one of :data:`STATUSES`."""

    run: SweepRun
    status: str
    detail: str = ""  # run folder, error, or job id
    log: Path | None = None


@dataclass
class Grid:
    """The expanded sweep: runs to consider, and task/method pairs the method does not
    support (left out, not an error: a grid over mixed methods has them)."""

    runs: list[SweepRun] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)


def parse_list(text: str) -> list[str]:
    """``"a,b, c"`` -> ``["a", "b", "c"]`` (order kept, duplicates dropped)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return list(dict.fromkeys(items))


def parse_seeds(text: str) -> list[int]:
    """``"0,1,5-7"`` -> ``[0, 1, 5, 6, 7]``."""
    from ..errors import UsageError

    seeds = []
    for item in parse_list(text):
        try:
            if "-" in item:
                low, high = (int(part) for part in item.split("-", 1))
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(item))
        except ValueError:
            raise UsageError(f"--seeds {text}: {item!r} is not a seed or a range a-b") from None
    return list(dict.fromkeys(seeds))


def expand(tasks: Sequence[str], methods: Sequence[str], seeds: Sequence[int], *, out: Path,
           profile: str = "default", assignments: Sequence[str] = (),
           config_file: Path | None = None, data_roots: Mapping[str, Path] | None = None,
           limit: int | None = None, device: str | None = None, nproc: int = 1,
           resume: bool = True) -> Grid:
    """Validate every cell (as ``xhbench run`` would) and build its command line.

    Raises:
        UsageError / ConfigError: an unknown task or method, an option that does not
            apply, or ``nproc`` > 1 with a method that trains in one process only;
            nothing has been started then.
    """
    from ..plugins import get_plugins
    from .config import parse_assignments
    from .distributed import require_distributed_training
    from .runner import RunRequest, plan

    registry = get_plugins().registry
    overrides = parse_assignments(tuple(assignments))
    data_roots = dict(data_roots or {})
    grid = Grid()
    for task in tasks:
        task_entry = registry.get("task", task)
        for method in methods:
            method_entry = registry.get("method", method)
            if task_entry.name not in registry.tasks_supported_by(method_entry):
                grid.unsupported.append((task, method))
                continue
            data_root = data_roots.get(task)
            for seed in seeds:
                request = RunRequest(task=task, method=method, out=Path(out), profile=profile,
                                     seed=seed, device=device, overrides=overrides,
                                     config_file=config_file, data_root=data_root,
                                     limit=limit)
                validated = plan(request)
                if nproc > 1:
                    require_distributed_training(validated.method_cls, method)
                args = ["--task", task, "--method", method, "--profile", profile,
                        "--seed", str(seed), "--out", str(out)]
                for assignment in assignments:
                    args += ["--set", assignment]
                for option, value in (("--config", config_file), ("--data-root", data_root),
                                      ("--limit", limit), ("--device", device)):
                    if value is not None:
                        args += [option, str(value)]
                if nproc > 1:
                    args += ["--nproc", str(nproc)]
                if resume:
                    args.append("--resume")
                grid.runs.append(SweepRun(task, method, seed, validated.config_hash,
                                          str(data_root) if data_root else None, tuple(args)))
    return grid


def finished_runs(out: Path, tasks: Iterable[str]) -> dict[tuple, Path]:
    """The finished run folders under ``out`` by :attr:`SweepRun.key`."""
    from ..results import find_runs

    found: dict[tuple, Path] = {}
    for task in tasks:
        for run in find_runs(Path(out), task)[0]:
            try:
                summary, config = run.summary, run.read_json("config.json")
                key = (summary["task"], summary["method"], summary["config_hash"],
                       summary["seed"], config.get("data_root"))
            except (OSError, ValueError, KeyError):
                continue  # unreadable: not counted as finished
            found[key] = run.path
    return found


# --- running one cell --------------------------------------------------------------------

_SLOT: int = 0  # this pool worker's slot (GPU assignment), set by _claim_slot


def _claim_slot(slots) -> None:
    global _SLOT
    _SLOT = slots.get()


def run_command(args: Sequence[str], log_path: str, env: Mapping[str, str] | None = None,
                gpus: Sequence[str] = (), gpus_per_run: int = 1) -> tuple[int, str]:
    """Run ``python -m xhbench run *args`` with its output in ``log_path``.

    Runs in a pool worker or a Slurm job. ``gpus``: the GPUs this sweep may use; the
    worker in slot ``s`` takes ``gpus_per_run`` of them from position ``s * gpus_per_run``.

    Returns:
        The exit code and the last lines of the log.
    """
    child_env = {**os.environ, **(env or {})}
    if "OMP_NUM_THREADS" not in child_env and os.environ.get("SLURM_CPUS_PER_TASK"):
        child_env["OMP_NUM_THREADS"] = os.environ["SLURM_CPUS_PER_TASK"]
    if gpus:
        start = _SLOT * gpus_per_run
        child_env["CUDA_VISIBLE_DEVICES"] = ",".join(
            gpus[(start + i) % len(gpus)] for i in range(gpus_per_run))
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        code = subprocess.run([sys.executable, "-m", "xhbench", "run", *args], stdout=log,
                              stderr=subprocess.STDOUT, env=child_env, check=False).returncode
    return code, _tail(Path(log_path))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def _outcome(run: SweepRun, code: int, tail: str, log: Path) -> Outcome:
    if code == 0:
        folder = next((line.split(":", 1)[1].strip() for line in reversed(tail.splitlines())
                       if line.startswith("Run folder:")), "")
        return Outcome(run, "finished", folder, log)
    last = next((line for line in reversed(tail.splitlines()) if line.strip()), "")
    return Outcome(run, "failed", f"exit code {code}: {last}", log)


# --- executors ---------------------------------------------------------------------------


def _slot_queue(context, workers: int):
    """Slots 0..workers-1, one taken by each pool worker as it starts."""
    slots = context.Queue()
    for slot in range(workers):
        slots.put(slot)
    return slots


def dispatch(runs: Sequence[SweepRun], *, log_dir: Path, executor: str = "local",
             workers: int = 1, nproc: int = 1, options: Mapping[str, Any] | None = None,
             wait: bool = True,
             on_outcome: Callable[[Outcome], None] = lambda outcome: None) -> list[Outcome]:
    """Run ``runs`` through ``executor``; report each outcome as it comes.

    Args:
        workers: runs at the same time (local: pool size; submitit: the job array's
            ``slurm_array_parallelism``).
        nproc: processes per run (``xhbench run --nproc``), to size threads and GPUs.
        options: submitit parameters (``slurm_partition``, ``timeout_min``,
            ``gpus_per_node``, ... and ``cluster``: ``slurm``, ``local`` or ``debug``).
        wait: submitit only; False returns after submitting (outcomes ``submitted``).
    """
    if executor == "local":
        return _dispatch_local(runs, log_dir, workers, nproc, on_outcome)
    if executor == "submitit":
        return _dispatch_submitit(runs, log_dir, workers, dict(options or {}), wait,
                                  on_outcome)
    from ..errors import UsageError

    raise UsageError(f"--executor {executor}: choose local or submitit")


def _visible_gpus() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [gpu for gpu in visible.split(",") if gpu.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA: CPU runs
        return []


def _dispatch_local(runs, log_dir: Path, workers: int, nproc: int, on_outcome) -> list[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if not runs:
        return []
    workers = max(1, min(workers, len(runs)))
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch
    env = {}
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores, do not oversubscribe them
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // (workers * nproc)))
    gpus = _visible_gpus()
    outcomes = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_claim_slot,
                             initargs=(_slot_queue(context, workers),)) as pool:
        futures = {pool.submit(run_command, run.args, str(log_dir / run.log_name), env, gpus,
                               nproc): run for run in runs}
        for future in as_completed(futures):
            run = futures[future]
            log = log_dir / run.log_name
            try:
                outcome = _outcome(run, *future.result(), log)
            except Exception as exc:  # noqa: BLE001 - the worker itself died: this run only
                outcome = Outcome(run, "failed", f"{type(exc).__name__}: {exc}", log)
            outcomes.append(outcome)
            on_outcome(outcome)
    return outcomes


def _dispatch_submitit(runs, log_dir: Path, workers: int, options: dict[str, Any], wait: bool,
                       on_outcome) -> list[Outcome]:
    try:
        import submitit
    except ImportError:
        from ..errors import UsageError

        raise UsageError("--executor submitit needs submitit: pip install 'xhbench[cluster]'"
                         ) from None
    if not runs:
        return []
    executor = submitit.AutoExecutor(folder=log_dir / "submitit",
                                     cluster=options.pop("cluster", None))
    executor.update_parameters(name=options.pop("name", "xhbench"),
                               slurm_array_parallelism=workers, **options)
    with executor.batch():  # one Slurm job array
        jobs = [executor.submit(run_command, run.args, str(log_dir / run.log_name))
                for run in runs]
    by_job = {id(job): run for job, run in zip(jobs, runs)}
    outcomes = []
    if not wait:
        for job, run in zip(jobs, runs):
            outcome = Outcome(run, "submitted", f"job {job.job_id}", log_dir / run.log_name)
            outcomes.append(outcome)
            on_outcome(outcome)
        return outcomes
    for job in submitit.helpers.as_completed(jobs, poll_frequency=5):
        run = by_job[id(job)]
        log = log_dir / run.log_name
        try:
            outcome = _outcome(run, *job.result(), log)
        except Exception as exc:  # noqa: BLE001 - the job failed (time limit, node, ...)
            first = str(exc).strip().splitlines()
            outcome = Outcome(run, "failed", f"job {job.job_id}: {first[-1] if first else exc}",
                              log)
        outcomes.append(outcome)
        on_outcome(outcome)
    return outcomes


def new_log_dir(out: Path) -> Path:
    """``<out>/.sweeps/<time>-<pid>/``: the logs of one sweep (ignored by the results readers,
    which only take ``<task>/<method>/<run>/`` folders holding a config)."""
    path = Path(out) / ".sweeps" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
