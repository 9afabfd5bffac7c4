"""`BoundTensor`: a per-feature bound on |value| that ops propagate instead of values.

Running a model on a BoundTensor (``ops`` dispatch to :mod:`primitives.backends.bounds`)
proves a bound on every intermediate result without any data or keys: exactly the bound the
encrypted backend will track, so it yields ``max_value`` for BFV parameter selection and
``integer_bits`` for CKKS. Integer bounds stay exact (Python ints).
"""

import numpy as np


class BoundTensor:
    """Bounds for a batch of any size: ``bound`` has the per-sample feature shape.

    Args:
        bound: array of non-negative bounds, one per feature, or a scalar broadcast to ``shape``.
        shape: per-sample feature shape, when ``bound`` is a scalar.
    """

    def __init__(self, bound, shape=None):
        array = np.asarray(bound)
        if shape is not None:
            array = np.broadcast_to(array, tuple(shape))
        if array.dtype.kind in "iu":
            array = array.astype(object)
        self.bound = np.array(array)
        if np.any(self.bound < 0):
            raise ValueError("Bounds must be non-negative.")

    @property
    def shape(self):
        return self.bound.shape

    @property
    def max(self):
        """The largest bound (a Python int for integer bounds)."""
        return max(self.bound.ravel().tolist()) if self.bound.size else 0

    def __repr__(self):
        return f"<BoundTensor shape={self.shape}, max={self.max}>"
