"""Datasets as numpy arrays, like Keras' loaders: found on disk through a data-directory
setting (no network unless nothing is found); ``digits`` ships inside the package."""

from . import digits, fashion_mnist, iris, mnist

__all__ = ["mnist", "fashion_mnist", "digits", "iris"]
