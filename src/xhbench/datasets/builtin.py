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
    register(
        "brats23",
        "xhbench.datasets.brats23:BraTS23",
        description="BraTS 2023 GLI layout (t1n/t1c/t2w/t2f/seg, ET = 3); splits = the "
                    "training and validation folders (validation has no seg)",
        modalities=("t1n", "t1c", "t2w", "t2f"),
        labels=(0, 1, 2, 3),
    )
    register(
        "autopet",
        "xhbench.datasets.autopet:AutoPET",
        description="AutoPET-II FDG-PET-CT-Lesions (<patient>/<study>/CTres,SUV,PET,SEG), "
                    "patient-level lesion-stratified 70/10/20 split",
        modalities=("ct", "suv", "pet"),
        labels=(0, 1),
    )
    register(
        "hnscc",
        "xhbench.datasets.tcia_petct:HNSCC",
        description="TCIA HNSCC PET/CT (<case>/nac_pet,ac_pet,ct; optional seg lesion mask), patient-level train/val",
        modalities=("nac_pet", "ac_pet", "ct"),
        labels=(0, 1),
    )
    register(
        "nsclc",
        "xhbench.datasets.tcia_petct:NSCLC",
        description="TCIA NSCLC PET/CT (<case>/nac_pet,ac_pet,ct; optional seg lesion mask), external test set",
        modalities=("nac_pet", "ac_pet", "ct"),
        labels=(0, 1),
    )
