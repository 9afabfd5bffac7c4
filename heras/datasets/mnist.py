"""MNIST digits: 60,000 + 10,000 images of 28x28 uint8, labels 0-9 (like keras.datasets.mnist)."""

from ._files import load_npz


def load_data(data_dir=None):
    """Return ((x_train, y_train), (x_test, y_test)) from mnist.npz; see `_files.find`."""
    return load_npz("mnist.npz", data_dir)
