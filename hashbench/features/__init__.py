"""The features stage: the AlexNet FC2 backbone and the on-disk feature cache."""

from .backbone import BACKBONES, FC2_DIM, BackboneSpec, build_alexnet_fc2, preprocess, resolve_device
from .extract import ImageInput, extract_features

__all__ = [
    "BACKBONES",
    "FC2_DIM",
    "BackboneSpec",
    "ImageInput",
    "build_alexnet_fc2",
    "extract_features",
    "preprocess",
    "resolve_device",
]
