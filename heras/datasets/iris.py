"""Fisher's Iris (150 samples, 4 features, 3 classes) bundled with the package (CC BY 4.0).

The reference problem of encrypted-training papers (Mihara et al. 2020). See
``data/README.md`` for provenance and licence.
"""

from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parent / "data" / "iris.csv"
CLASSES = ("setosa", "versicolor", "virginica")


def load_data(test_fraction=0.2, seed=0, standardize=True):
    """Return ((x_train, y_train), (x_test, y_test)): a seeded shuffle, then the split.

    Args:
        test_fraction: share of the 150 samples held out (0.2: 120 train, 30 test).
        seed: the shuffle's seed.
        standardize: scale features to zero mean and unit variance on the training part.
    """
    table = np.loadtxt(PATH, delimiter=",", skiprows=1)
    if table.shape != (150, 5):
        raise ValueError(f"{PATH} should hold 150 rows of 5 columns; found {table.shape}.")
    order = np.random.default_rng(seed).permutation(len(table))
    x, y = table[order, :4], table[order, 4].astype(np.int64)
    split = len(x) - int(round(test_fraction * len(x)))
    x_train, x_test = x[:split], x[split:]
    if standardize:
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return (x_train, y[:split]), (x_test, y[split:])
