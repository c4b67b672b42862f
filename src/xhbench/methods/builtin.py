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
