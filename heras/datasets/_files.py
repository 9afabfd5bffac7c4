"""Find dataset archives: an explicit folder, then $SEALION_DATA, then the Keras cache."""

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


def load_npz(filename, data_dir=None):
    """Load ((x_train, y_train), (x_test, y_test)) from a Keras-style .npz archive."""
    path = find(filename, data_dir)
    with np.load(path, allow_pickle=False) as archive:
        missing = [k for k in KEYS if k not in archive]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}; expected {list(KEYS)}.")
        return (archive["x_train"], archive["y_train"]), (archive["x_test"], archive["y_test"])
