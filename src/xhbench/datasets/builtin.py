"""Built-in data sets, registered through the public hook."""

from __future__ import annotations

from ..hookspecs import hookimpl


@hookimpl
def xhbench_register_datasets(register):
    register(
        "brats18",
        "xhbench.datasets.brats18:BraTS18",
        description="BraTS 2018 training layout (HGG/LGG, flair/t1/t1ce/t2/seg), M2FTrans split 1",
        modalities=("flair", "t1", "t1ce", "t2"),
        labels=(0, 1, 2, 4),
    )
