"""Fashion-MNIST: 60,000 + 10,000 images of 28x28 uint8, labels 0-9."""

from ._files import load_npz


def load_data(data_dir=None):
    """Return ((x_train, y_train), (x_test, y_test)) from fashion_mnist.npz; see `_files.find`."""
    return load_npz("fashion_mnist.npz", data_dir)
