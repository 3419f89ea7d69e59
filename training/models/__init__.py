"""Encoders (Spec. ResNet-50, Spec. ViT, SpectralGPT), the spectral adapter and task heads.

Entry points: :func:`training.models.registry.build_encoder` and
:func:`training.models.registry.build_head`.
"""

from training.models.loading import load_encoder
from training.models.registry import (
    ClassificationModel,
    RegressionModel,
    SegmentationModel,
    build_encoder,
    build_head,
    count_parameters,
    encoder_names,
)

__all__ = [
    "ClassificationModel",
    "RegressionModel",
    "SegmentationModel",
    "build_encoder",
    "build_head",
    "count_parameters",
    "encoder_names",
    "load_encoder",
]
