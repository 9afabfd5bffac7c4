"""MNIST digits: 60,000 + 10,000 images of 28x28 uint8, labels 0-9 (like keras.datasets.mnist)."""

from ._files import load_npz


def load_data(data_dir=None, download=True):
    """Return ((x_train, y_train), (x_test, y_test)) from mnist.npz.

    Looks in ``data_dir``, then $SEALION_DATA, then the Keras cache (see `_files.find`); only if
    none holds the file and ``download`` is true, downloads it with Keras.
    """
    return load_npz("mnist.npz", data_dir, _download if download else None)


def _download():
    import keras
    return keras.datasets.mnist.load_data()
