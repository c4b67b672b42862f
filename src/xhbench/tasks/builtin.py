"""Built-in tasks, registered through the public hook."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def xhbench_register_tasks(register):
    register(
        "brats18_missing",
        "xhbench.tasks.brats18_missing:BraTS18Missing",
        description="BraTS 2018 missing-modality segmentation: 15 modality subsets, Dice WT/TC/ET",
        kind="segmentation",
        dataset="brats18",
        tables=("Table 3", "Table 10"),
    )
