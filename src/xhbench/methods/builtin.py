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
        "nnunetv2",
        "xhbench.methods.nnunetv2:NNUNetV2Method",
        description="the official nnU-Net v2 package (pip install 'xhbench[nnunet]'): nnU-Net's "
        "own planning, preprocessing, trainer (epochs from the profile) and predictor; "
        "missing inputs zero-filled per training sample",
        kinds=("segmentation",),
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
    register(
        "m3ae",
        "xhbench.methods.missing.m3ae:M3AEMethod",
        description="M3AE (Liu et al. 2023): 3D U-Net pre-trained as a multimodal masked "
        "autoencoder (modality + patch masking, learned substitute for missing input), "
        "fine-tuned with symmetric self-distillation between two missing-modality copies",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
    register(
        "spa",
        "xhbench.methods.missing.spa:SPAMethod",
        description="SPA / GSS (Qiu et al. 2023): RFNet trained with category-aware group "
        "self-support (per-modality students learn a leader/consensus target per class, "
        "random voxel mask); RFNet stage first",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
    register(
        "shaspec",
        "xhbench.methods.missing.shaspec:ShaSpecMethod",
        description="ShaSpec (Wang et al. 2023): shared + per-modality specific encoders, "
        "residual shared-specific fusion, missing features generated from the available "
        "shared ones, distribution-alignment and domain-classification losses",
        kinds=("segmentation",),
        tasks=("brats18_missing",),
    )
    # --- reference rows that need no training (src/xhbench/methods/reference.py) ---
    register(
        "identity",
        "xhbench.methods.reference:Identity",
        description="reference row: every target predicted as the source as the task "
        "normalised it (no training); transfer tasks only",
        kinds=("synthesis",),
    )
    register(
        "histmatch",
        "xhbench.methods.reference:HistMatch",
        description="reference row: the source mapped onto each target's intensity histogram "
        "pooled over training crops (quantile mapping); transfer tasks only",
        kinds=("synthesis",),
    )
    register(
        "threshold",
        "xhbench.methods.threshold:Threshold",
        description="reference row: autopet_seg lesion = SUV >= 2.5 in the body; "
        "brats18_missing WT = FLAIR >= a threshold learned on the training split (no "
        "tumour without FLAIR)",
        kinds=("segmentation",),
        tasks=("autopet_seg", "brats18_missing"),
    )
    # --- modality-translation baselines (src/xhbench/methods/translation) ---
    translation = (
        ("pix2pix2d", "pix2pix:Pix2Pix2D",
         ("Pix2Pix (Isola et al. 2017), 2D slice-wise: U-Net generator, conditional PatchGAN, "
          "GAN + 100*L1; one model per pair")),
        ("pix2pix3d", "pix2pix:Pix2Pix3D",
         "Pix2Pix (Isola et al. 2017) with 3D layers; one model per pair"),
        ("cyclegan2d", "cyclegan:CycleGAN2D",
         ("CycleGAN (Zhu et al. 2017), 2D slice-wise: ResNet generators, LSGAN, cycle + "
          "identity, no paired loss; one model per modality pair")),
        ("cyclegan3d", "cyclegan:CycleGAN3D",
         "CycleGAN (Zhu et al. 2017) with 3D layers; one model per modality pair"),
        ("resvit", "resvit:ResViT",
         ("ResViT (Dalmaz et al. 2022), 2D slice-wise: ART blocks with a shared transformer, "
          "Res-CNN then ResViT stages; one model per pair")),
        ("spadegan", "spadegan:SPADEGAN",
         ("SPADE GAN, 3D: source-conditioned, target-switchable SPADE generator, multi-scale "
          "PatchGANs (MS-SPADE's conditioning without latent diffusion); one model for all "
          "pairs")),
        ("reggan", "reggan:RegGAN",
         ("RegGAN (Kong et al. 2021), 2D slice-wise: ResNet generator + registration network "
          "(NC+R), correction + smoothness; one model per pair")),
        ("cut", "cut:CUT",
         ("CUT (Park et al. 2020), 2D slice-wise, unpaired: ResNet generator, PatchNCE on its "
          "encoder features, LSGAN; FastCUT through options; one model per pair")),
        ("gcgan", "gcgan:GcGAN",
         ("GcGAN (Fu et al. 2019), 2D slice-wise, unpaired one-sided: shared generator, "
          "rotation/flip geometry consistency, two PatchGANs; one model per pair")),
        ("nicegan", "nicegan:NICEGAN",
         ("NICE-GAN (Chen et al. 2020), 2D slice-wise, unpaired: the discriminators' encoders "
          "are the generators' encoders, decoupled training, cycle + reconstruction; one model "
          "per modality pair")),
        ("eagan", "eagan:EaGAN",
         ("Ea-GANs (Yu et al. 2019), 3D, paired: pix2pix 3D with 3D Sobel edge maps in the "
          "generator loss (gEa) and the discriminator input (dEa, default); one model per pair")),
        ("msspade", "msspade:MSSPADE",
         ("MS-SPADE (Kim and Park 2024), 3D latent diffusion: MONAI AutoencoderKL, then a "
          "SPADEDiffusionModelUNet modulated by the source latent and the target switch, DDIM "
          "sampling; one model for all pairs")),
        ("mddiff", "mddiff:MDDiff",
         ("MD-Diff / CDM (Xing et al. 2024), 2D slice-wise: masked-autoencoder representation "
          "of the target + cross-attention U-Net, then a diffusion model of the representation "
          "given the source (DDIM); one model per pair")),
        ("diffusion", "diffusion:Diffusion",
         ("Conditional diffusion (Dhariwal and Nichol 2021), 2D slice-wise: MONAI "
          "DiffusionModelUNet on [noisy target, source], DDPM training, DDIM sampling; one "
          "model per pair")),
    )
    for name, target, description in translation:
        register(name, f"xhbench.methods.translation.{target}", description=description,
                 kinds=("synthesis",))
