"""Find dataset archives: an explicit folder, then $SEALION_DATA, then the Keras cache; only
then (if allowed) download with Keras."""

import os
from pathlib import Path

import numpy as np

KEYS = ("x_train", "y_train", "x_test", "y_test")


def find(filename, data_dir=None):
    """Return the path of ``filename`` in the first folder that has it, or raise naming them all."""
    folders = [data_dir, os.environ.get("SEALION_DATA"), Path.home() / ".keras" / "datasets"]
    searched = [Path(f) for f in folders if f]
    for folder in searched:
        if (folder / filename).is_file():
            return folder / filename
    raise FileNotFoundError(
        f"{filename} not found in {[str(f) for f in searched]}. Pass data_dir=, or set the "
        "SEALION_DATA environment variable to a folder holding it.")


def load_npz(filename, data_dir=None, download=None):
    """Load ((x_train, y_train), (x_test, y_test)) from a Keras-style .npz archive.

    Args:
        filename: e.g. "mnist.npz".
        data_dir: folder searched first (a config's ``dataset.data_dir``).
        download: a no-argument function returning the arrays (Keras' loader), called only when
            no folder holds ``filename``; None raises instead (no network).
    """
    try:
        path = find(filename, data_dir)
    except FileNotFoundError:
        if download is None:
            raise
        return download()
    return read_npz(path)


def read_npz(path):
    """Load ((x_train, y_train), (x_test, y_test)) from the .npz archive at ``path``."""
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in KEYS if k not in archive]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}; expected {list(KEYS)}.")
        return (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])



def archive_loader(filename, keras_name):
    """A Keras-style ``load_data(data_dir=None, download=True)`` for ``filename``.

    It looks in ``data_dir``, then $SEALION_DATA, then the Keras cache (see :func:`find`); only
    if none holds the file and ``download`` is true does it download with
    ``keras.datasets.<keras_name>.load_data()``.
    """
    def from_keras():
        import keras
        return getattr(keras.datasets, keras_name).load_data()

    def load_data(data_dir=None, download=True):
        return load_npz(filename, data_dir, from_keras if download else None)

    load_data.__doc__ = (f"Return ((x_train, y_train), (x_test, y_test)) from {filename}: from "
                         "``data_dir``, $SEALION_DATA or the Keras cache; downloaded with Keras only "
                         "when none has it and ``download`` is true.")
    return load_data
