"""Who sees which images: the server's unlabelled pool, the client's labelled split, the test set.

The VAE trains on the first training images without their labels (the unlabelled pool); the
client's labelled examples come from the last ``labelled_samples`` training images, a split the
VAE never saw; accuracies are measured on the dataset's test set. The three are disjoint by
index, which :func:`split` checks.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Splits:
    """Index ranges into the training set, and the test set as given."""

    pool: slice
    labelled: slice
    train_count: int

    def check_disjoint(self):
        """Raise if the pool and the labelled split share an index."""
        pool = set(range(*self.pool.indices(self.train_count)))
        labelled = set(range(*self.labelled.indices(self.train_count)))
        if pool & labelled:
            raise ValueError(f"The unlabelled pool and the labelled split share {len(pool & labelled)} images.")
        return True


def split(train_count, labelled_samples, pool_samples=None):
    """The unlabelled pool (first images) and the labelled split (the last ``labelled_samples``).

    Args:
        train_count: images in the training set.
        labelled_samples: size of the client's labelled split, taken from the end.
        pool_samples: size of the unlabelled pool, from the start (default: everything before
            the labelled split).
    """
    if not 0 < labelled_samples < train_count:
        raise ValueError(f"Expected 0 < labelled_samples < {train_count} (the training images). "
                         f"Received: labelled_samples={labelled_samples}")
    room = train_count - labelled_samples
    pool_samples = room if pool_samples is None else pool_samples
    if not 0 < pool_samples <= room:
        raise ValueError(f"Expected 0 < pool_samples <= {room} (training images left after the labelled split "
                         f"of {labelled_samples}). Received: pool_samples={pool_samples}")
    splits = Splits(slice(0, pool_samples), slice(train_count - labelled_samples, train_count), train_count)
    splits.check_disjoint()
    return splits


def draw_per_class(labels, k, seed, classes=None):
    """Indices of ``k`` examples of each class drawn at random (without replacement) from ``labels``.

    Draws are nested: with the same seed, the k = 10 draw starts with the k = 1 draw, so more
    labels add examples and never swap the first ones.
    """
    labels = np.asarray(labels).reshape(-1)
    classes = np.unique(labels) if classes is None else np.arange(classes)
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            raise ValueError(f"Class {c} has {len(members)} labelled examples; k={k} per class needs more. "
                             "Enlarge the labelled split or lower labels_per_class.")
        chosen.append(rng.permutation(members)[:k])
    return np.concatenate(chosen)
