"""Load a config's dataset as float images in [0, 1] with a channel axis: (N, H, W, 1)."""

import numpy as np

import heras
from .config import ConfigError, resolve

MAX_PIXEL = {"mnist": 255, "fashion_mnist": 255, "digits": heras.datasets.digits.MAX_PIXEL}


def load_dataset(config):
    """Return ((x_train, y_train), (x_test, y_test)) for ``config.dataset``."""
    d = config.dataset
    loader = getattr(heras.datasets, d.name)
    data_dir = resolve(config, d.data_dir) if d.data_dir else None
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data(data_dir=data_dir, download=d.download)
    except FileNotFoundError as err:
        raise ConfigError(f"dataset: {err} Or set dataset.download: true to let Keras fetch it.") from err
    if d.train_samples is not None:
        x_train, y_train = x_train[:d.train_samples], y_train[:d.train_samples]
    scale = float(MAX_PIXEL[d.name])
    return (_images(x_train, scale), y_train.astype(np.int64)), (_images(x_test, scale), y_test.astype(np.int64))


def _images(x, scale):
    x = np.asarray(x, dtype=np.float32) / scale
    return x[..., None] if x.ndim == 3 else x
