"""Modality-translation baselines (paper Tables 1, 2, 6): Pix2Pix and CycleGAN in 2D and
3D, ResViT (2D), an MS-SPADE-style 3D generator and RegGAN (2D).

Shared pieces live in :mod:`.networks` (generators, discriminators, losses) and
:mod:`.base` (pairs, intensities, 2D slice-wise / 3D training and inference); one module
per method. See ``docs/methods/translation.md``.
"""
