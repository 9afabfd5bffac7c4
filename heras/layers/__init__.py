"""heras layers: Keras layers whose computation is primitives ops, so they also run encrypted."""

from keras import Input

from .base import EncryptableLayer
from .convolution import Conv2D
from .core import Activation, Dense, Dropout, Flatten, Reshape
from .gating import PositionGate
from .merging import Add
from .normalization import BatchNormalization
from .polynomial import Poly, Square
from .pooling import AveragePooling2D, SumPooling2D
from .registry import get_layer_class, register_layer

__all__ = ["Input", "EncryptableLayer", "Dense", "Conv2D", "AveragePooling2D", "SumPooling2D",
           "Flatten", "Reshape", "Square", "Poly", "Activation", "Dropout", "BatchNormalization", "Add",
           "PositionGate", "register_layer", "get_layer_class"]
