"""What the demo scripts share: images in [0, 1], the published split, quiet TensorFlow."""

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

DATASETS = ("mnist", "fashion_mnist", "digits")
SPLIT_FILE = "split.json"
QUERIES = ("labelled", "test")  # the client's two encrypted batches


def load_images(name, data_dir=None):
    """((x_train, y_train), (x_test, y_test)) as float images in [0, 1] with a channel axis."""
    import heras
    from experiments.data import MAX_PIXEL
    loader = getattr(heras.datasets, name)
    (x_train, y_train), (x_test, y_test) = loader.load_data(data_dir=data_dir)
    scale = float(MAX_PIXEL[name])

    def images(x):
        x = np.asarray(x, dtype=np.float32) / scale
        return x[..., None] if x.ndim == 3 else x
    return (images(x_train), np.asarray(y_train, np.int64)), (images(x_test), np.asarray(y_test, np.int64))


def write_split(folder, dataset, splits):
    """The server publishes which training images it used (the client takes its labels elsewhere)."""
    record = {"dataset": dataset, "pool": [splits.pool.start, splits.pool.stop],
              "labelled": [splits.labelled.start, splits.labelled.stop]}
    (Path(folder) / SPLIT_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")


def read_split(folder):
    path = Path(folder) / SPLIT_FILE
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run server_train.py --out {folder} first.")
    return json.loads(path.read_text(encoding="utf-8"))


def fresh_folder(path, overwrite=False):
    """Create ``path``; refuse a folder that already holds files unless ``overwrite``."""
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise SystemExit(f"{path} already holds files; choose another folder or pass --overwrite.")
    path.mkdir(parents=True, exist_ok=True)
    return path
