"""Whether ``ours`` uses its prior: what the run records in ``summary.json["diagnostics"]``.

* :class:`PriorContribution`: predict a volume twice, the second time with the fused
  map ``X_h'`` replaced by its mean over the first pass's sliding windows and over the
  map's locations (every location of every window then reads the same vector), and
  count the voxels predicted as tumour (any label > 0) in the first pass whose label
  changes. 0 means the decoder ignores what ``X_h'`` says about the input.
* :func:`variance_ratio`: variance of ``X_h'`` across samples over its mean square
  (~0 when the representation collapsed to a constant).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["PriorContribution", "variance_ratio"]


def variance_ratio(features: torch.Tensor) -> float:
    """Mean over elements of the variance across the batch (dim 0, population), divided
    by the mean square of ``features``."""
    features = features.float()
    return float(features.var(dim=0, unbiased=False).mean() / features.pow(2).mean())


class PriorContribution:
    """Counts, over every volume predicted through :meth:`predict`, the predicted tumour
    voxels and those of them whose label changes when ``X_h'`` is replaced: by its mean
    (``changed["mean"]``: what ``X_h'`` says about the input) and by the level's map
    ``h`` before O (``changed["level"]``: what O's attention and the fusion add)."""

    REFERENCES = ("mean", "level")

    def __init__(self):
        self.tumour = 0
        self.changed = dict.fromkeys(self.REFERENCES, 0)

    def fraction(self, reference: str = "mean") -> float | None:
        return self.changed[reference] / self.tumour if self.tumour else None

    @property
    def value(self) -> float | None:
        return self.fraction("mean")

    def predict(self, network, infer: Callable[[torch.Tensor], torch.Tensor],
                x: torch.Tensor) -> torch.Tensor:
        """The argmax of ``infer(x)`` (``network`` unchanged), counted as above.
        ``network.replace_features(X_h', h)`` is the hook through which ``X_h'`` is read
        and replaced; ``infer`` runs ``network`` over the sliding windows of ``x``."""
        total = {"sum": 0.0, "windows": 0}  # sum of X_h' over windows and locations, count

        def record(features: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
            dims = (0, *range(2, features.ndim))
            total["sum"] = total["sum"] + features.float().sum(dim=dims, keepdim=True)
            total["windows"] += features[:, :1].numel()
            return features

        def mean(features: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
            return (total["sum"] / total["windows"]).to(features).expand_as(features)

        def before_prior(features: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
            return level

        try:
            network.replace_features = record
            prediction = infer(x).argmax(dim=1)
            tumour = prediction > 0
            for reference, replace in zip(self.REFERENCES, (mean, before_prior)):
                network.replace_features = replace
                replaced = infer(x).argmax(dim=1)
                self.changed[reference] += int((tumour & (replaced != prediction)).sum())
        finally:
            network.replace_features = None
        self.tumour += int(tumour.sum())
        return prediction
