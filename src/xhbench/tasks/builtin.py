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
    register(
        "brats23_transfer",
        "xhbench.tasks.brats23_transfer:BraTS23Transfer",
        description="BraTS 2023 MRI modality transfer (T1/T1ce/T2/FLAIR, 4x4): PSNR, NMSE, SSIM",
        kind="synthesis",
        dataset="brats23",
        tables=("Table 1", "Table 2", "Table 8", "Table 9"),
    )
    register(
        "autopet_transfer",
        "xhbench.tasks.autopet_transfer:AutoPETTransfer",
        description="AutoPET-II PET/CT modality transfer (PET->PET, CT->CT, PET->CT, CT->PET): "
        "SSIM, PSNR and their average",
        kind="synthesis",
        dataset="autopet",
        tables=("Table 4",),
    )
    register(
        "autopet_seg",
        "xhbench.tasks.autopet_seg:AutoPETSeg",
        description="AutoPET-II lesion segmentation from PET (SUV) + CT: Dice, Dice-, case-level "
        "TPR/TNR/FNR/FPR, autoPET false-positive/negative volumes",
        kind="segmentation",
        dataset="autopet",
        tables=("Table 5", "Table 7"),
    )
    register(
        "hnscc_nsclc_transfer",
        "xhbench.tasks.hnscc_nsclc_transfer:HNSCCNSCLCTransfer",
        description="NAC-PET -> AC-PET and NAC-PET -> CT tuned on HNSCC, evaluated on HNSCC "
        "validation and NSCLC (domain shift): SSIM, PSNR and their average",
        kind="synthesis",
        dataset="hnscc",
        tables=("Table 6",),
    )
