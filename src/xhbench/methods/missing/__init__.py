"""Dedicated missing-modality segmentation methods (HeMIS, RFNet, mmFormer, M2FTrans,
M3AE, SPA/GSS, ShaSpec).

Each network has one encoder per modality and a fusion that sees only the available
modalities; :mod:`.base` holds the shared training loop, losses and inference.
"""
