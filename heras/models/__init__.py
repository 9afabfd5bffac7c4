"""heras models: Sequential and functional Model (with encrypted inference), sub-model extraction
and model loading."""

import keras

from .extraction import extract
from .functional import Model
from .sequential import Sequential


def load_model(path):
    """Load a model saved with ``model.save(path)`` (Keras format, heras layers registered)."""
    from .. import layers  # noqa: F401  (registers the heras classes)
    return keras.saving.load_model(path)


__all__ = ["Sequential", "Model", "extract", "load_model"]
