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
    register(
        "unetr",
        "xhbench.methods.unetr:UNETRMethod",
        description="UNETR from scratch (MONAI); missing inputs zero-filled",
        kinds=("segmentation", "synthesis"),
    )
    register(
        "nnunet",
        "xhbench.methods.nnunet:NNUNetMethod",
        description="nnU-Net-style DynUNet (MONAI): planned kernels/strides, deep supervision, "
        "Dice+CE; not the nnU-Net package; missing inputs zero-filled",
        kinds=("segmentation", "synthesis"),
    )
    register(
        "swinunetr_ssl",
        "xhbench.methods.swinunetr_ssl:SwinUNETRSSLMethod",
        description="SwinUNETR with the self-supervised encoder pre-training of Tang et al. "
        "(rotation, contrastive, inpainting), then fine-tuned; missing inputs zero-filled",
        kinds=("segmentation", "synthesis"),
    )
    register(
        "ours",
        "xhbench.methods.ours.method:Ours",
        description="the paper's method: SwinUNETR encoder/decoder with a learnable prior O, "
        "self-supervised pre-training (contrastive, equivariance, invariance, decomposition) "
        "and invariance-regularised fine-tuning; masks missing modalities itself",
        kinds=("segmentation", "synthesis"),
    )
    register(
        "hemis",
        "xhbench.methods.missing.hemis:HeMISMethod",
        description="HeMIS (Havaei et al. 2016), 3D multi-scale form: per-modality encoders, "
        "mean and variance over the available modalities, shared decoder",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
    register(
        "rfnet",
        "xhbench.methods.missing.rfnet:RFNetMethod",
        description="RFNet (Ding et al. 2021): modality-specific encoders, region-aware fusion, "
        "shared-weight per-modality regulariser decoder, deep supervision",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
    register(
        "mmformer",
        "xhbench.methods.missing.mmformer:MMFormerMethod",
        description="mmFormer (Zhang et al. 2022): hybrid CNN + intra-modal transformer encoders, "
        "inter-modal transformer over masked tokens, conv decoder, auxiliary regularisers",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
    register(
        "m2ftrans",
        "xhbench.methods.missing.m2ftrans:M2FTransMethod",
        description="M2FTrans (Shi et al. 2023): learnable fusion tokens with modality-masked "
        "self-attention, spatial-weighted skip fusion, auxiliary regularisers",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
