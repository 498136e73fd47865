"""Cubes for machine learning: training sets (:func:`export`) and :class:`CubeDataset`."""

from finkcube.ml.dataset import CubeDataset
from finkcube.ml.presets import NORMALISERS, PRESETS, Preset, register_preset
from finkcube.ml.training import ExportReport, export
from finkcube.ml.trainset import TrainingSet, is_training_set

__all__ = [
    "NORMALISERS",
    "PRESETS",
    "CubeDataset",
    "ExportReport",
    "Preset",
    "TrainingSet",
    "export",
    "is_training_set",
    "register_preset",
]
