"""8x8 handwritten digits bundled with the package (1,437 + 360 images, pixels 0..16).

Small enough to ship and to train in seconds: the quick start runs on it with no network.
See ``data/README.md`` for provenance and licence (CC BY 4.0).
"""

from pathlib import Path

from ._files import read_npz

PATH = Path(__file__).resolve().parent / "data" / "digits.npz"
MAX_PIXEL = 16


def load_data(data_dir=None, download=None):
    """Return ((x_train, y_train), (x_test, y_test)); ``data_dir`` and ``download`` are accepted
    like the other loaders' and ignored (the archive ships inside the package)."""
    del data_dir, download
    return read_npz(PATH)
