"""Data parallelism inside the training loop: ranks, the DDP wrapper, batch sharding.

Every rank builds the same global batch of step ``k`` (a pure function of seed and
step) and keeps its slots ``rank, rank + N, ...`` (:func:`rank_share`). Each rank's
loss is weighted by its share of the batch, so DDP's gradient average is the gradient
of the global batch's mean loss, as one process would compute it. Outside a process
group every helper here is the identity of a one-process run. The process group itself
is the harness's (:mod:`xhbench.harness.distributed`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["batch_length", "is_distributed", "is_main", "mean_over_ranks", "rank", "rank_share",
           "world_size", "wrap"]


def is_distributed() -> bool:
    """True when a torch.distributed process group is up."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the group (1 without one)."""
    if not is_distributed():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def rank() -> int:
    """This process's rank (0 without a group)."""
    if not is_distributed():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def is_main() -> bool:
    """True on the process that writes files (rank 0, or the only process)."""
    return rank() == 0


def wrap(network, device):
    """``network`` in DistributedDataParallel when a group is up; else ``network`` itself.

    ``static_graph``: the same parameters take part in every step, which lets DDP cope
    with parameters a network builds but never uses (MONAI's transformer blocks keep
    unused cross-attention norms) and with activation checkpointing, without the
    per-step graph search of ``find_unused_parameters``. The caller keeps using the
    unwrapped module for ``state_dict`` and prediction.
    """
    if world_size() == 1:
        return network
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(network, device_ids=[device.index] if device.type == "cuda"
                                   else None, static_graph=True)


def rank_share(batch: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """This rank's part of a collated global batch and the weight of its loss.

    Rank ``r`` of ``N`` takes slots ``r, r + N, ...`` of the ``n`` samples; its weight
    is ``slots * N / n``, so that the mean over ranks of ``weight * (mean loss over
    its slots)`` (what DDP's gradient average computes) is the mean loss over the
    global batch. A rank left without a slot (a batch smaller than ``N``, e.g. an
    epoch's short last batch) gets a stand-in copy of slot ``r mod n`` with weight 0:
    it must still run backward for DDP's all-reduce.
    """
    n = batch_length(batch)
    size, me = world_size(), rank()
    slots = list(range(me, n, size))
    weight = len(slots) * size / n
    if not slots:
        slots = [me % n]
    return {key: _take(value, slots, n) for key, value in batch.items()}, weight


def mean_over_ranks(value):
    """The mean over ranks of a scalar tensor (with :func:`rank_share`'s weights: the
    global batch's mean loss)."""
    if not is_distributed():
        return value
    import torch.distributed as dist

    total = value.detach().float().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def batch_length(batch: dict[str, Any]) -> int:
    """The number of samples of a collated batch."""
    value = batch["image"]
    return int(value.shape[0]) if hasattr(value, "shape") else len(value)


def _take(value: Any, slots: list[int], n: int) -> Any:
    """Rows ``slots`` of a collated entry (tensors and per-sample lists); others as they are."""
    import torch

    if isinstance(value, torch.Tensor) and value.ndim and value.shape[0] == n:
        return value[torch.as_tensor(slots)]
    if isinstance(value, (list, tuple)) and len(value) == n:
        return type(value)(value[i] for i in slots) if isinstance(value, list) else tuple(
            value[i] for i in slots)
    return value
