"""Datasets found on disk through a data-directory setting (no network at run time)."""

from . import fashion_mnist, mnist

__all__ = ["mnist", "fashion_mnist"]
