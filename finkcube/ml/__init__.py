"""Cubes for machine learning: :class:`CubeDataset`, indexable and torch-ready."""

from finkcube.ml.dataset import CubeDataset

__all__ = ["CubeDataset"]
