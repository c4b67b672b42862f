"""Data-parallel runs under ``torchrun``: process group, ranks, gathering, rank-0 writes.

``torchrun --nproc-per-node N -m xhbench run ...`` (or ``xhbench run --nproc N``)
starts N copies of the run; each reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
from the environment torchrun sets. :func:`process_group` joins them (gloo on
CPU, NCCL on CUDA, each process on ``cuda:LOCAL_RANK``). Outside torchrun every
helper here is the identity of a one-process run, and nothing is initialised.

Division of work:

* Training (the engine, :mod:`xhbench.training.engine`): every rank builds the
  same global batch of step ``k`` and keeps its slots (see
  :mod:`xhbench.training.parallel`, whose helpers are re-exported here).
* Evaluation (:func:`evaluate_sharded`): test cases are dealt round-robin; after
  each case the ranks exchange what they did (rows, a skipped case, or an error)
  and rank 0 journals it, so ``cases.csv`` holds every case exactly once and an
  interrupted run resumes as a one-process run does.
* Files: only rank 0 writes the run folder (config, log, checkpoints, rows,
  summary); the other ranks learn its path by broadcast. A results root used by
  several nodes must therefore be on a shared file system.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..training.parallel import (  # noqa: F401 - the loop's side, re-exported here
    is_distributed,
    is_main,
    mean_over_ranks,
    rank,
    rank_share,
    world_size,
    wrap,
)

__all__ = ["all_gather", "barrier", "broadcast", "evaluate_sharded", "is_distributed",
           "is_main", "launched_by_torchrun", "max_over_ranks", "mean_over_ranks",
           "process_group", "rank", "rank_share", "require_distributed_training", "world_size",
           "wrap"]


def launched_by_torchrun() -> bool:
    """True in a process that torchrun started as one of several (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def require_distributed_training(method_cls: type, name: str) -> None:
    """Raise UsageError unless the method trains with DDP (``trains_distributed()``)."""
    from ..errors import UsageError

    if not method_cls.trains_distributed():
        raise UsageError(f"method {name!r} trains in one process only; run it without "
                         "torchrun / --nproc")


def _rank_device(requested: str | None):
    """``cuda:LOCAL_RANK`` when CUDA is asked for (or present and nothing is asked), else CPU."""
    import torch

    from ..errors import UsageError

    kind = torch.device(requested).type if requested else (
        "cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if kind != "cuda":
        raise UsageError(f"--device {requested}: several processes run on cpu or cuda only")
    if not torch.cuda.is_available():
        raise UsageError(f"--device {requested}: CUDA is not available on this machine")
    if requested and torch.device(requested).index is not None:
        raise UsageError(f"--device {requested}: under torchrun each process uses "
                         "cuda:LOCAL_RANK; pass --device cuda (or choose the GPUs with "
                         "CUDA_VISIBLE_DEVICES)")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if local >= torch.cuda.device_count():
        raise UsageError(f"process {local} of this node has no GPU: {torch.cuda.device_count()} "
                         "visible; start at most one process per GPU")
    return torch.device("cuda", local)


@contextlib.contextmanager
def process_group(requested_device: str | None) -> Iterator[Any]:
    """Yield this process's device, with the process group up when torchrun started it.

    Outside torchrun: :func:`~xhbench.harness.environment.pick_device`, no group. Under
    torchrun: joins the group (gloo on CPU, NCCL on CUDA) and leaves it on exit, after a
    barrier when the block finished normally. A group the caller already set up is used
    and left up.
    """
    from .environment import pick_device

    if is_distributed():
        yield _rank_device(requested_device)
        return
    if not launched_by_torchrun():
        yield pick_device(requested_device)
        return
    import torch
    import torch.distributed as dist

    device = _rank_device(requested_device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    try:
        yield device
        # every rank's collectives done before any rank tears gloo down: a rank that
        # destroys its group while a peer still talks to it can abort at exit (SIGABRT,
        # "terminate called without an active exception", seen once in CI)
        dist.barrier()
    finally:
        gc.collect()  # DDP reducers and pending works freed while the interpreter is alive
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (nothing without a group)."""
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


def broadcast(value: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` on every rank (any picklable object)."""
    if not is_distributed():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather(value: Any) -> list[Any]:
    """Every rank's ``value``, in rank order, on every rank."""
    if not is_distributed():
        return [value]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def max_over_ranks(value: float) -> float:
    """The largest ``value`` of all ranks (e.g. peak memory)."""
    return max(all_gather(value))


# --- evaluation -------------------------------------------------------------------------


class _Sink:
    """Stands in for the run folder inside :func:`~xhbench.harness.evaluation.evaluate`:
    every case it records (or skips) is exchanged with the other ranks, and rank 0
    journals all of them in the real run folder."""

    def __init__(self, run, done: list[str], on_bad_case: Callable | None):
        self.run = run
        self.done = list(done)
        self.on_bad_case = on_bad_case
        self.failed = False

    def __getattr__(self, name: str) -> Any:  # anything else evaluate() may read
        return getattr(self.run, name)

    def completed_cases(self) -> list[str]:
        return list(self.done)

    def record_case(self, case: str, rows) -> None:
        self.exchange(("case", case, list(rows)))

    def skip(self, error) -> None:
        self.exchange(("skip", error))

    def exchange(self, event: tuple) -> bool:
        """Send this rank's event, act on everyone's; True when every rank is idle."""
        events = all_gather(event)
        errors = [(r, e[1]) for r, e in enumerate(events) if e[0] == "error"]
        if errors:
            self.failed = True
            source, blob = errors[0]
            raise _unpickle_error(blob, source)
        for kind, *payload in events:
            if kind == "case":
                case, rows = payload
                if is_main():
                    self.run.record_case(case, rows)
                self.done.append(case)
            elif kind == "skip" and is_main():
                self.on_bad_case(payload[0])
        return all(kind == "idle" for kind, *_ in events)


def evaluate_sharded(evaluate: Callable, task, method, cases: Sequence, run, *,
                     progress: bool = True, on_bad_case: Callable | None = None) -> list[str]:
    """:func:`~xhbench.harness.evaluation.evaluate` with the cases dealt across ranks.

    The cases not yet journalled (rank 0's view, broadcast) are dealt round-robin;
    each rank runs ``evaluate`` on its share with a stand-in run folder that exchanges
    every recorded or skipped case with the other ranks, and rank 0 journals them in
    exchange order (with no skips: the order of ``cases``). ``on_bad_case`` runs on
    rank 0 only. An error on one rank is raised on every rank.

    Returns:
        The ids of the cases evaluated, in this call or before (the same on every rank).
    """
    done = broadcast(run.completed_cases() if is_main() else None)
    finished = set(done)
    pending = [case for case in cases if case.case_id not in finished]
    share = pending[rank()::world_size()]
    sink = _Sink(run, done, on_bad_case)
    error = None
    try:
        evaluate(task, method, share, sink, progress=progress and is_main(),
                 on_bad_case=sink.skip if on_bad_case is not None else None)
    except Exception as exc:
        if sink.failed:  # another rank's error, already known to all
            raise
        error = exc
    if error is not None:  # ship it to the other ranks, who raise it; this one raises its own
        with contextlib.suppress(Exception):
            sink.exchange(("error", _pickle_error(error)))
        raise error
    while not sink.exchange(("idle",)):
        pass
    return sink.done


def _pickle_error(exc: BaseException) -> bytes:
    try:
        blob = pickle.dumps(exc)
        pickle.loads(blob)
        return blob
    except Exception:  # noqa: BLE001 - an exception that does not survive pickling
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _unpickle_error(blob: bytes, source: int) -> BaseException:
    error = pickle.loads(blob)
    if source != rank():
        from ..errors import XhbenchError

        if not isinstance(error, XhbenchError):
            return RuntimeError(f"process {source} failed: {type(error).__name__}: {error}")
    return error
