"""The features stage: the backbone registry (AlexNet FC2, VGG-16/19 fc7, ResNet-50 pool) and the feature cache."""

from .backbone import (
    FC2_DIM,
    BackboneSpec,
    backbone_for,
    build_alexnet_fc2,
    build_backbone,
    preprocess,
    resolve_device,
    results_suffix,
)
from .extract import ImageInput, dataset_features, extract_features
from .networks import ALIASES, BACKBONES, DEFAULT_BACKBONE, canonical_backbone, get_backbone

__all__ = [
    "ALIASES",
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "FC2_DIM",
    "BackboneSpec",
    "backbone_for",
    "results_suffix",
    "ImageInput",
    "build_alexnet_fc2",
    "build_backbone",
    "canonical_backbone",
    "dataset_features",
    "extract_features",
    "get_backbone",
    "preprocess",
    "resolve_device",
]
