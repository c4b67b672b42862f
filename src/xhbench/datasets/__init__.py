"""Data sets: real on-disk layouts and phantoms written in the same layouts."""

from .base import PHANTOM_MANIFEST, Case, Dataset, Problem, Volume, split_sha256

__all__ = ["PHANTOM_MANIFEST", "Case", "Dataset", "Problem", "Volume", "split_sha256"]
