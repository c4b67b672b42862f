"""Built-in methods, registered through the public hook."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def xhbench_register_methods(register):
    register(
        "swinunetr",
        "xhbench.methods.swinunetr:SwinUNETRMethod",
        description="SwinUNETR from scratch (MONAI); missing inputs zero-filled",
        kinds=("segmentation", "synthesis"),
    )
