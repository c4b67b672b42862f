"""``ours``: the paper's method (Tan et al., "Personalize to generalize").

``network``: SwinUNETR encoder/decoder with the learnable prior O; ``losses``: the
pre-training and fine-tuning terms; ``method``: the :class:`Ours` method.
Importing this package stays light: torch and MONAI load with the submodules.
"""
