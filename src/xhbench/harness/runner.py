"""The runner: resolve everything up front, then train, evaluate and record.

Order of work: registry look-ups and config validation (no heavy imports, no
files), then seeding, device, data set (phantom written once into the cache),
training, evaluation case by case (rows appended as they come), cost, summary.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import __version__
from ..datasets.base import default_cache_dir
from ..errors import ConfigError, DataError, UsageError, XhbenchError
from ..plugins import get_plugins
from . import config as cfg
from . import distributed
from .checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from .stages import Stages, expected_seconds
from .status import recorded
from ..results import RunDir, find_unfinished

__all__ = ["RunRequest", "Plan", "plan", "execute", "default_cache_dir", "new_run_folder",
           "open_task", "pretraining_cache_file", "pretraining_cache_key", "record_environment",
           "run_config_hash", "run_summary"]

log = logging.getLogger("xhbench")


@dataclass
class RunRequest:
    """What the user asked for, as given on the command line."""

    task: str
    method: str
    out: Path
    data_root: Path | None = None
    profile: str = "default"
    seed: int = 0
    device: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    cache_dir: Path | None = None
    limit: int | None = None
    skip_bad_cases: bool = False
    pretrain_data_root: Path | None = None
    deterministic: bool = False
    resume: bool = False


@dataclass
class Plan:
    """A validated run: classes loaded and configs resolved, nothing executed yet."""

    request: RunRequest
    task_cls: type
    method_cls: type
    task_config: Any
    method_config: Any

    @property
    def config(self) -> dict[str, Any]:
        r = self.request
        return {"task": r.task, "method": r.method, "profile": r.profile, "seed": r.seed,
                "data_root": str(r.data_root) if r.data_root else None, "limit": r.limit,
                "deterministic": r.deterministic,
                "task_config": cfg.to_dict(self.task_config),
                "method_config": cfg.to_dict(self.method_config)}

    @property
    def config_hash(self) -> str:
        """Identifies the settings (not the seed or data location): runs that share it
        pool as seeds of one leaderboard row."""
        return run_config_hash(self.config)


def run_config_hash(config: Mapping[str, Any]) -> str:
    """The hash of a run's config without its seed and data location."""
    return cfg.config_hash({k: config[k] for k in config if k not in ("data_root", "seed")})


def new_run_folder(out: Path, config: Mapping[str, Any], **recorded: Any) -> RunDir:
    """Create the run folder of ``config`` (the keys of :attr:`Plan.config`) under ``out``
    and write its ``config.json``: the config, its hash, then ``recorded``."""
    config_hash = run_config_hash(config)
    run = RunDir.create(Path(out), config["task"], config["method"].replace(":", "-"),
                        config["seed"], config_hash)
    run.write_json("config.json", {**config, "config_hash": config_hash, **recorded})
    return run


def record_environment(run: RunDir, device, processes: int = 1) -> None:
    """Write the run's ``environment.json`` (with the process count under torchrun)."""
    from .environment import environment

    run.write_json("environment.json", {**environment(device),
                                        **({"processes": processes} if processes > 1 else {})})


def _started_revision(run: RunDir) -> str | None:
    """The code's revision when this process started the run (``environment.json``), not
    when it finished: a checkout that moves during a long run does not change what ran."""
    from .environment import git_revision

    if run.file("environment.json").exists():
        return run.read_json("environment.json").get("git_revision")
    return git_revision()


def plan(request: RunRequest) -> Plan:
    """Check the request and resolve configs; raise before any work is done."""
    registry = get_plugins().registry
    task_entry = registry.get("task", request.task)
    method_entry = registry.get("method", request.method)
    if task_entry.name not in registry.tasks_supported_by(method_entry):
        supported = ", ".join(registry.tasks_supported_by(method_entry)) or "none"
        raise UsageError(f"method {method_entry.name!r} does not support task "
                         f"{task_entry.name!r} (it supports: {supported})")
    task_cls, method_cls = task_entry.load(), method_entry.load()
    method_cls.check_installed()
    file_layers = (cfg.load_config_file(request.config_file) if request.config_file
                   else {"task": {}, "method": {}})
    task_set, method_set = _split_overrides(request.overrides, task_cls.Config, method_cls.Config)
    task_config = cfg.resolve(f"task {task_entry.name}", task_cls.Config, task_cls.profiles,
                              request.profile, file_layers["task"], task_set)
    method_config = cfg.resolve(f"method {method_entry.name}", method_cls.Config,
                                method_cls.profiles, request.profile, file_layers["method"],
                                method_set)
    if request.limit is not None:
        task_config.max_test_cases = request.limit
    return Plan(request, task_cls, method_cls, task_config, method_config)


def _split_overrides(overrides: Mapping[str, str], task_config: type,
                     method_config: type) -> tuple[dict[str, str], dict[str, str]]:
    """Route ``task.key`` / ``method.key`` / bare ``key`` to the config that has it."""
    import dataclasses

    task_keys = {f.name for f in dataclasses.fields(task_config)}
    method_keys = {f.name for f in dataclasses.fields(method_config)}
    keys = {"task": task_keys, "method": method_keys}
    task_set, method_set = {}, {}
    for key, value in overrides.items():
        scope, _, name = key.rpartition(".")
        other = {"task": "method", "method": "task"}.get(scope)
        if other and name not in keys[scope] and name in keys[other]:
            raise ConfigError(f"--set {key}: {name} is a {other} option, not a {scope} "
                              f"option; write {other}.{name}")
        if scope == "task":
            task_set[name] = value
        elif scope == "method":
            method_set[name] = value
        elif scope:
            raise ConfigError(f"--set {key}: prefix must be 'task.' or 'method.'")
        elif name in task_keys and name in method_keys:
            raise ConfigError(f"--set {key}: both task and method have {name!r}; "
                              f"write task.{name} or method.{name}")
        elif name in task_keys:
            task_set[name] = value
        elif name in method_keys:
            method_set[name] = value
        else:
            raise ConfigError(f"--set {key}: unknown option"
                              f"{cfg.did_you_mean(name, task_keys | method_keys)}; task "
                              f"options: {', '.join(sorted(task_keys))}; method options: "
                              f"{', '.join(sorted(method_keys))}")
    return task_set, method_set


def execute(plan_: Plan) -> RunDir:
    """Run a validated plan and return its finished run folder.

    Under torchrun (``WORLD_SIZE`` > 1) every process calls this: they join one process
    group, train with DDP, share the test cases, and only rank 0 writes the run folder
    (see :mod:`xhbench.harness.distributed`).
    """
    with distributed.process_group(plan_.request.device) as device:
        return _execute(plan_, device)


@dataclass
class _Run:
    """What the steps of one run share."""

    plan: Plan
    device: Any
    world: int
    task: Any
    method: Any
    run: RunDir
    resumed: bool
    skip: Callable[[DataError], None] | None
    stages: Stages

    @property
    def request(self) -> RunRequest:
        return self.plan.request


def _execute(plan_: Plan, device) -> RunDir:
    """The steps of a run: prepare, train (or restore), evaluate, finish."""
    import torch

    state = _prepare(plan_, device)
    handler = _attach_log(state.run) if distributed.is_main() else None
    with recorded(state.run if handler is not None else None):
        try:
            _record_start(state)
            train_cases = _training_cases(state)
            training = _train_or_restore(state, train_cases)
            test_cases, evaluated, eval_seconds = _evaluate(state)
            _finish(state, training, train_cases, test_cases, evaluated, eval_seconds)
        except torch.OutOfMemoryError as exc:
            raise XhbenchError(
                f"out of memory on {device} ({str(exc).splitlines()[0]}); lower the method's "
                f"roi, batch_size, sw_batch_size or feature_size, e.g. --set "
                f"method.batch_size=1 --set method.sw_batch_size=1 (the unfinished run folder "
                f"{state.run.path} is kept)") from exc
        finally:
            if handler is not None:
                log.removeHandler(handler)
                handler.close()
    return state.run


def _prepare(plan_: Plan, device) -> _Run:
    """Seed, open the task on its data, build the method, create (or find) the run folder."""
    import torch

    from .seeding import seed_everything, use_deterministic_algorithms

    request = plan_.request
    world = distributed.world_size()
    if world > 1:
        distributed.require_distributed_training(plan_.method_cls, request.method)
    seed_everything(request.seed)
    if request.deterministic:
        use_deterministic_algorithms()
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    stages = Stages(expected_seconds(Path(request.out), request.task, request.method,
                                     plan_.config_hash))
    stages("phantom" if request.data_root is None else "data")
    task = open_task(plan_.task_cls, plan_.task_config, request.data_root, request.cache_dir,
                     pretrain_data_root=request.pretrain_data_root,
                     pretraining=plan_.method_cls.pretrains)
    method = plan_.method_cls(plan_.method_config, task.spec, device)

    run, resumed = None, False
    if distributed.is_main():  # only rank 0 writes; the others get the folder's path
        if request.resume:
            run = find_unfinished(Path(request.out), request.task, request.method,
                                  plan_.config_hash, request.seed)
        resumed = run is not None
        if run is None:
            run = new_run_folder(request.out, plan_.config)
    if world > 1:
        path, resumed = distributed.broadcast((run.path, resumed) if run else None)
        run = RunDir(path)
    skip = _skipper(run) if request.skip_bad_cases else None
    return _Run(plan_, device, world, task, method, run, resumed, skip, stages)


def _record_start(state: _Run) -> None:
    """Log what runs on what (on resuming, repair the run folder); write ``environment.json``."""
    request, task, run = state.request, state.task, state.run
    log.info("xhbench %s | task %s v%s | method %s | profile %s | seed %d | device %s",
             __version__, task.name, task.version, state.method.name, request.profile,
             request.seed, state.device)
    log.info("data: %s (%s) at %s", task.dataset, task.data.origin, task.data.root)
    for role, data in task.extra_data.items():
        log.info("%s data: %s (%s) at %s", role, data.name, data.origin, data.root)
    if distributed.is_main():
        if state.resumed:
            log.info("resuming %s", run.path)
            run.repair()
        record_environment(run, state.device, state.world)


def _training_cases(state: _Run) -> list:
    """The task's training cases; with ``--skip-bad-cases``, those that load cleanly."""
    cases = state.task.train_cases()
    return cases if state.skip is None else _loadable(state.task, cases, state.skip)


def _train_or_restore(state: _Run, train_cases: list) -> dict[str, Any]:
    """Pre-train (methods that do) and fit, then save the checkpoint; or, for a run
    resumed after training, restore the checkpoint. Returns ``training.json``."""
    run, method, task = state.run, state.method, state.task
    if distributed.broadcast(run.file(CHECKPOINT).exists()):  # trained before a stop
        load_checkpoint(run.file(CHECKPOINT), method, task.spec)
        return run.read_json("training.json")
    started = time.perf_counter()
    if method.pretrains:
        state.stages("pre-training")
    pretraining = _pretrain(state) if method.pretrains else None
    data = (task.whole_cases(train_cases, handles_missing=method.handles_missing)
            if method.trains_on_whole_cases else
            task.training_data(train_cases, method.roi, handles_missing=method.handles_missing))
    state.stages("training")
    history = method.fit(data, run.path, log.info)
    training = {"pretraining": pretraining, "fit": history,
                "seconds": time.perf_counter() - started, "budget": method.budget.as_cost()}
    if distributed.is_main():  # saved once
        run.write_json("training.json", training)
        save_checkpoint(run.file(CHECKPOINT), method, state.plan.method_config, task.spec)
    return training


def _pretrain(state: _Run) -> dict[str, Any]:
    """Pre-train once per (method, pre-training settings, corpus, seed); reuse the cache
    (a run that finds another pre-training it waits for it). The run folder keeps the
    resumable pre-training state."""
    import torch

    from .weights_cache import cache_entry, save_weights

    method, task, request = state.method, state.task, state.request
    cases = task.pretraining_cases()
    path = pretraining_cache_file(method, task, cases, request.seed, request.cache_dir)
    with cache_entry(path) as cached:
        if cached:
            method.load_state_dict(torch.load(path, map_location=method.device,
                                              weights_only=False))
            log.info("pre-trained state reused from %s", path)
            return {"cached": str(path)}
        history = method.pretrain(task.pretraining_data(cases, method.roi), state.run.path,
                                  log.info)
        if distributed.is_main():  # the ranks hold the same state: one writes it
            save_weights(path, method.state_dict())
    return {**history, "saved": str(path)}


def pretraining_cache_file(method, task, cases: list, seed: int,
                           cache_dir: Path | None = None) -> Path:
    """Where the cache keeps ``method``'s state pre-trained on ``cases``."""
    key = pretraining_cache_key(method, task, cases, seed)
    return (cache_dir or default_cache_dir()) / "pretrained" / method.name / f"{key}.pt"


def pretraining_cache_key(method, task, cases: list, seed: int) -> str:
    """The pre-trained state's cache key: the method's :meth:`~Method.pretraining_key`,
    the task's version and preprocessing options, and the corpus as read (its case
    ids and :meth:`~xhbench.datasets.base.Dataset.fingerprint`), and the seed."""
    from ..datasets.base import split_sha256

    corpus = task.pretraining_corpus
    return cfg.config_hash({"method": method.name, "settings": method.pretraining_key(),
                            "task": task.name, "task_version": task.version,
                            "preprocessing": task.preprocessing_options(),
                            "dataset": corpus.name, "origin": corpus.origin,
                            "corpus": split_sha256([c.case_id for c in cases]),
                            "content": corpus.fingerprint(cases), "seed": seed})


def _evaluate(state: _Run) -> tuple[list, list[str], float]:
    """Predict and score every test case (dealt across ranks under torchrun).
    Returns the test cases, the ids evaluated and the seconds it took."""
    from .evaluation import evaluate

    task, method, run = state.task, state.method, state.run
    segmenter = _reference_segmenter(state)
    state.stages("evaluation")
    test_cases = task.test_cases()
    started = time.perf_counter()
    if state.world > 1:  # cases dealt across ranks, rows journalled by rank 0
        evaluated = distributed.evaluate_sharded(evaluate, task, method, test_cases, run,
                                                 progress=True, on_bad_case=state.skip)
    else:
        evaluated = evaluate(task, method, test_cases, run, progress=True,
                             on_bad_case=state.skip, segmenter=segmenter)
    if not evaluated:
        raise DataError("no test case could be evaluated", path=task.data.root)
    return test_cases, evaluated, time.perf_counter() - started


def _reference_segmenter(state: _Run):
    """The task's reference segmenter for downstream metrics, if it asks for one (trained
    once and cached); its identity goes to ``downstream.json``."""
    from .downstream import reference_segmenter

    if state.world > 1 and state.task.downstream_view() is not None:
        raise ConfigError("downstream evaluation runs in one process (no torchrun)")
    segmenter = reference_segmenter(state.task, device=state.device,
                                    cache_dir=state.request.cache_dir)
    if segmenter is not None:
        state.run.write_json("downstream.json", segmenter.identity)
    return segmenter


def _finish(state: _Run, training: dict[str, Any], train_cases: list, test_cases: list,
            evaluated: list[str], eval_seconds: float) -> None:
    """Write ``cost.json`` and ``summary.json`` (rank 0); every rank waits for it."""
    from .environment import peak_memory_mb

    method, device, world = state.method, state.device, state.world
    cost = {"parameters": method.parameter_count(), "peak_memory_mb": peak_memory_mb(device),
            **training.get("budget", {}), "train_seconds": training["seconds"],
            "train_cases": len(train_cases),
            "resumed": state.resumed,
            "eval_seconds_per_case": eval_seconds / len(evaluated)}
    sampling = method.sampling_cost()
    if sampling:  # iterative samplers (diffusion): steps and seconds per case
        cost["sampling"] = {**sampling, "seconds_per_case": sampling.get("seconds", 0.0)
                            / len(evaluated)}
    if world > 1:  # per process: comparable with a one-process run
        cost.update(peak_memory_mb=distributed.max_over_ranks(cost["peak_memory_mb"]),
                    eval_seconds_per_case=cost["eval_seconds_per_case"] * world,
                    processes=world)
    if distributed.is_main():
        state.run.write_json("cost.json", cost)
        summary = _summary(state.plan, state.task, state.run, device, test_cases, evaluated,
                           cost, {"pretraining": training["pretraining"], "fit": training["fit"]})
        summary.update(variant=method.variant(), diagnostics=method.diagnostics())
        log.info("variant: %s | diagnostics: %s", summary["variant"] or "-",
                 _key_values(summary["diagnostics"]) or "-")
        state.run.finish(summary)
        log.info("finished: %s", state.run.path)
    distributed.barrier()  # every rank returns a finished run folder


def _key_values(values: Mapping[str, Any]) -> str:
    """``values`` as ``key value`` text for a log line (floats to 4 significant digits)."""
    return ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                     for key, value in values.items())


def open_task(task_cls: type, task_config: Any, data_root: Path | None,
              cache_dir: Path | None = None, *, pretrain_data_root: Path | None = None,
              pretraining: bool = False):
    """The task on its data sets, each opened through the registry from the task's
    :meth:`~xhbench.tasks.base.Task.data_source`: ``data_root`` (``pretrain_data_root``
    for the ``"pretraining"`` role, opened only when ``pretraining``), else the cached
    phantom the task's config names."""
    registry = get_plugins().registry
    roots = {"main": data_root, "pretraining": pretrain_data_root}
    cache = cache_dir or default_cache_dir()
    opened = {}
    for role, name in {"main": task_cls.dataset, **task_cls.extra_datasets}.items():
        if role == "pretraining" and not pretraining:
            continue
        source = task_cls.data_source(task_config, role, roots)
        if source is not None:
            opened[role] = registry.load("dataset", name).open(source.root, cache_dir=cache,
                                                               **source.phantom)
    main = opened.pop("main")
    return task_cls(task_config, main, opened)


def _attach_log(run: RunDir) -> logging.Handler:
    handler = logging.FileHandler(run.file("log.txt"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _skipper(run: RunDir):
    """Record a case that cannot be loaded in ``skipped.csv`` and log it."""

    def skip(error: DataError) -> None:
        if distributed.is_main():  # other ranks' skipped test cases reach rank 0
            log.warning("skipped %s", error)
            run.record_skipped(error.case, error.path, str(error))

    return skip


def _loadable(task, cases, skip) -> list:
    """The training cases that load cleanly; the others go to ``skip``."""
    good = []
    for case in cases:
        try:
            task.data.read(case)
        except DataError as exc:
            skip(exc)
        else:
            good.append(case)
    return good


def _summary(plan_: Plan, task, run: RunDir, device, test_cases, evaluated, cost,
             history) -> dict:
    return run_summary(task, run, method=plan_.request.method, seed=plan_.request.seed,
                       profile=plan_.request.profile, config_hash=plan_.config_hash,
                       device=device, test_cases=test_cases, evaluated=evaluated, cost=cost,
                       history=history)


def _stored_table(name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A paper-table spec as the summary keeps it: JSON files are written with sorted keys,
    so a ``groups`` mapping is stored as ``[label, settings]`` pairs, in the task's order."""
    stored = {"name": name, **spec}
    if isinstance(spec.get("groups"), Mapping):
        stored["groups"] = [[label, list(ids)] for label, ids in spec["groups"].items()]
    return stored


def run_summary(task, run: RunDir, *, method: str, seed: int, profile: str, config_hash: str,
                device, test_cases, evaluated, cost, history) -> dict:
    """The ``summary.json`` of a run (also written by ``xhbench evaluate``)."""
    from ..datasets.base import split_sha256

    ids = [case.case_id for case in test_cases]
    return {
        "run_id": run.path.name,
        "task": task.name,
        "task_version": task.version,
        "method": method,
        "seed": seed,
        "profile": profile,
        "config_hash": config_hash,
        "data": {"dataset": task.dataset, "origin": task.data.origin,
                 "split": task.evaluation_split(),
                 "split_sha256": split_sha256(ids), "n_cases": len(evaluated),
                 "skipped_cases": len(ids) - len(evaluated)},
        "xhbench_version": __version__,
        "git_revision": _started_revision(run),
        "device": str(device),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "higher_is_better": task.higher_is_better(),
        "conventions": task.conventions(),
        "tables": [_stored_table(name, spec) for name, spec in task.tables.items()],
        "cost": cost,
        "training": history,
    }
