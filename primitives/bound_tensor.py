"""`BoundTensor`: a per-feature bound on |value| that ops propagate instead of values.

Running a model on a BoundTensor (``ops`` dispatch to :mod:`primitives.backends.bounds`)
proves a bound on every intermediate result without any data or keys: exactly the bound the
encrypted backend will track, so it yields ``max_value`` for BFV parameter selection and
``integer_bits`` for CKKS. Integer bounds stay exact (Python ints).

Given a :class:`CKKSErrorModel`, a BoundTensor also carries a per-feature bound on the CKKS
error |decrypted - exact| and every op propagates it the way the encrypted backend computes:
errors add, a plain factor c multiplies them by |c|, a product x * y turns errors e_x, e_y
into |x| e_y + |y| e_x + e_x e_y, and every op that creates noise (encryption, rescaling,
relinearisation, encoding a plain factor) adds its own share.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CKKSErrorModel:
    """What one CKKS op adds to the error of each value (absolute, in value units).

    Attributes:
        op_error: a fresh encryption, a rescaling (after a plain or ciphertext product, with
            its relinearisation) or an encryption of zero adds at most this much.
        encoding_error: a plain factor c is encoded as c + r with |r| <= encoding_error
            (0.5 / prime <= 2^-scale_bits), so multiplying x by it adds |x| * encoding_error;
            a plain addend adds encoding_error.
    """

    op_error: float
    encoding_error: float


class BoundTensor:
    """Bounds for a batch of any size: ``bound`` has the per-sample feature shape.

    Args:
        bound: array of non-negative bounds, one per feature, or a scalar broadcast to ``shape``.
        shape: per-sample feature shape, when ``bound`` is a scalar.
        error: CKKS: bound on each feature's error, or a scalar broadcast to the shape
            (default: ``error_model.op_error``, a fresh encryption's, when a model is given).
        error_model: CKKS: a :class:`CKKSErrorModel`; without one, errors are not tracked.
    """

    def __init__(self, bound, shape=None, error=None, error_model=None):
        array = np.asarray(bound)
        if shape is not None:
            array = np.broadcast_to(array, tuple(shape))
        if array.dtype.kind in "iu":
            array = array.astype(object)
        self.bound = np.array(array)
        if np.any(self.bound < 0):
            raise ValueError("Bounds must be non-negative.")
        self.error_model = error_model
        self.error = None
        if error_model is not None:
            error = error_model.op_error if error is None else error
            self.error = np.array(np.broadcast_to(np.asarray(error, dtype=np.float64), self.bound.shape))
            if np.any(self.error < 0):
                raise ValueError("Error bounds must be non-negative.")

    @property
    def shape(self):
        return self.bound.shape

    @property
    def max(self):
        """The largest bound (a Python int for integer bounds)."""
        return max(self.bound.ravel().tolist()) if self.bound.size else 0

    @property
    def max_error(self):
        """The largest error bound (None when errors are not tracked)."""
        if self.error is None:
            return None
        return float(self.error.max()) if self.error.size else 0.0

    def __repr__(self):
        extra = "" if self.error is None else f", max_error={self.max_error:.3g}"
        return f"<BoundTensor shape={self.shape}, max={self.max}{extra}>"
