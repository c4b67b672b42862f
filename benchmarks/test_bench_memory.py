"""Expected GPU memory per method at its paper profile, estimated from the model sizes
(no GPU needed): the network is built with the paper profile, moved to PyTorch's ``meta``
device (shapes without data) and run once forward in training mode on a batch of the
paper's crops; every tensor autograd saves for the backward pass is counted.

Training memory = weights (4 bytes per parameter, float32) + gradients (4) + optimiser
state (AdamW / Adam: 8; Adam with AMSGrad: 12; SGD with momentum: 4) + the saved
activations (float32 sizes: an upper bound, since bf16 autocast on CUDA saves the inputs of
convolutions and matrix products in 2 bytes). Gradient checkpointing (SwinUNETR's
``use_checkpoint`` in the paper profile) is honoured: tensors inside a checkpointed block
are recomputed, not saved. Not counted: the CUDA context and cuDNN workspaces (about
0.5-1 GiB), allocator fragmentation, the transient peak of the backward pass.

Inference (sliding windows, no gradients) needs the weights, at most the activations of one
window batch (``sw_batch_size`` windows; usually far less, as nothing is kept for a
backward pass) and the stitched outputs; for a 240x240x155 case evaluated under 15 subsets
at once that is 15 x classes x 8.9 M voxels x 4 bytes = 2.0 GiB for 4 classes.
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

from xhbench.harness.config import resolve
from xhbench.plugins import get_plugins
from xhbench.tasks.base import TaskSpec

SEG = TaskSpec("brats18_missing", "segmentation", ("flair", "t1ce", "t1", "t2"),
               ("background", "ncr", "ed", "et"))
# (method, optimiser state bytes per parameter, forward passes per step on the batch)
METHODS = [("swinunetr", 8, 1), ("swinunetr_ssl", 8, 1), ("unetr", 8, 1), ("nnunet", 4, 1),
           ("ours", 8, 2), ("hemis", 12, 1), ("rfnet", 12, 1), ("mmformer", 12, 1),
           ("m2ftrans", 12, 1), ("m3ae", 8, 2), ("spa", 12, 1), ("shaspec", 4, 1)]
# ours: fine-tuning runs the batch under two modality subsets (invariance term) in one
# forward; m3ae's fine-tuning runs each case as two copies under their own subsets.
GIB = 2**30


def saved_activation_bytes(network: torch.nn.Module, batch: int, roi) -> int:
    """Bytes of the tensors one training forward saves for backward (meta device)."""
    parameters = {id(p) for p in network.parameters()}
    saved: dict[int, int] = {}
    keep = []  # hold the packed tensors so that ids stay unique

    def pack(tensor):
        base = tensor if tensor._base is None else tensor._base  # views share their base
        if id(base) not in parameters:
            saved[id(base)] = base.numel() * base.element_size()
            keep.append(base)
        return tensor

    x = torch.empty(batch, len(SEG.in_channels), *roi, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        if len(inspect.signature(network.forward).parameters) >= 2:  # (image, available)
            network(x, torch.ones(batch, len(SEG.in_channels), dtype=torch.bool, device="meta"))
        else:
            network(x)
    return sum(saved.values())


def estimate(name: str, optimiser_bytes: int, passes: int, roi=None) -> dict:
    cls = get_plugins().registry.load("method", name)
    config = resolve(name, cls.Config, cls.profiles, "paper")
    if roi is not None:
        config = dataclasses.replace(config, roi=tuple(roi))
    method = cls(config, SEG, torch.device("cpu"))
    network = method.network.to("meta").train()
    params = sum(p.numel() for p in network.parameters() if p.requires_grad)
    batch = config.batch_size * passes
    activations = saved_activation_bytes(network, batch, config.roi)
    state = params * (4 + 4 + optimiser_bytes)
    return {"method": name, "roi": tuple(config.roi), "batch": config.batch_size,
            "passes": passes, "params_M": params / 1e6, "weights_grads_optimiser_GiB":
            state / GIB, "activations_GiB": activations / GIB,
            "train_GiB": (state + activations) / GIB,
            "sw_batch_size": getattr(config, "sw_batch_size", None)}


def test_gpu_memory_estimates_at_the_paper_profiles(benchmark, record_ratio):
    rows = []

    def run():
        rows.clear()
        for name, optimiser_bytes, passes in METHODS:
            try:
                rows.append(estimate(name, optimiser_bytes, passes))
                if rows[-1]["roi"] != (96, 96, 96):
                    rows.append(estimate(name, optimiser_bytes, passes, roi=(96, 96, 96)))
            except Exception as exc:  # noqa: BLE001 - reported, the other methods go on
                rows.append({"method": name, "error": f"{type(exc).__name__}: {exc}"})

    benchmark.pedantic(run, rounds=1, iterations=1)
    failed = [row for row in rows if "error" in row]
    for row in rows:
        if "error" in row:
            record_ratio(f"memory {row['method']}: not estimated", float("nan"),
                         meaning=row["error"])
            continue
        roi = "x".join(map(str, row["roi"]))
        record_ratio(f"memory {row['method']} {roi} batch {row['batch']}: train GiB",
                     row["train_GiB"],
                     meaning=f"{row['params_M']:.1f} M parameters: weights + gradients + "
                             f"optimiser {row['weights_grads_optimiser_GiB']:.2f} GiB; saved "
                             f"activations {row['activations_GiB']:.2f} GiB (float32, "
                             f"{row['passes']} forward pass(es) of the batch per step)",
                     **{k: v for k, v in row.items() if k != "method"})
    if failed:
        pytest.fail(f"could not estimate: {failed}")
