"""The task's training split in nnU-Net v2's raw dataset format.

``<raw>/Dataset001_<name>/``: ``dataset.json``, ``imagesTr/<case>_<cccc>.nii.gz`` (one file
per input channel) and ``labelsTr/<case>.nii.gz`` (class indices), each NIfTI with the case's
voxel spacing. The arrays are what every xhbench method trains on (the task's
``load_case``), so the nnU-Net model sees at test time what it saw in training; nnU-Net
then applies its own fingerprinting, planning, cropping and normalisation to them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...tasks.base import TaskSpec, WholeCases

__all__ = ["DATASET_ID", "dataset_json", "export_raw_dataset"]

DATASET_ID = 1
FILE_ENDING = ".nii.gz"


def dataset_name(task: str) -> str:
    return f"Dataset{DATASET_ID:03d}_xhbench_{task}"


def dataset_json(spec: TaskSpec, num_training: int) -> dict:
    """nnU-Net's dataset.json for ``spec``: channel names (nnU-Net normalises a channel
    named ``CT`` with its CT scheme, any other with a per-image z-score) and class labels."""
    return {
        "channel_names": {str(i): name for i, name in enumerate(spec.in_channels)},
        "labels": {name: i for i, name in enumerate(spec.out_channels)},
        "numTraining": num_training,
        "file_ending": FILE_ENDING,
        # nibabel, as xhbench reads its NIfTI; the arrays keep xhbench's (X, Y, Z) grid
        "overwrite_image_reader_writer": "NibabelIO",
        "description": f"xhbench task {spec.name}: training split, task preprocessing",
    }


def export_raw_dataset(cases: WholeCases, spec: TaskSpec, raw_root: Path) -> Path:
    """Write the raw dataset of ``cases`` under ``raw_root``; return its folder."""
    import nibabel as nib

    folder = Path(raw_root) / dataset_name(spec.name)
    (folder / "imagesTr").mkdir(parents=True, exist_ok=True)
    (folder / "labelsTr").mkdir(parents=True, exist_ok=True)
    for i in range(len(cases)):
        item = cases[i]
        affine = np.diag([*map(float, item["spacing"]), 1.0])
        for c, channel in enumerate(item["image"]):
            nib.save(nib.Nifti1Image(np.asarray(channel, dtype=np.float32), affine),
                     folder / "imagesTr" / f"{item['case_id']}_{c:04d}{FILE_ENDING}")
        nib.save(nib.Nifti1Image(np.asarray(item["label"], dtype=np.uint8), affine),
                 folder / "labelsTr" / f"{item['case_id']}{FILE_ENDING}")
    import json

    (folder / "dataset.json").write_text(json.dumps(dataset_json(spec, len(cases)), indent=2))
    return folder
