"""Encrypted backend: the ops of :mod:`primitives.backends.plain` on `EncryptedTensor`s."""

from ... import linear_maps
from ...encrypted_tensor import EncryptedTensor
from .arithmetic import add, multiply, negate, polynomial, square, subtract
from .codec import decrypt, encrypt
from .linear import apply_linear_map
from .seal_errors import translated

__all__ = ["add", "subtract", "negate", "multiply", "square", "polynomial", "matmul", "conv2d", "sum_pool2d",
           "avg_pool2d", "reshape", "sum", "encrypt", "decrypt", "apply_linear_map"]


def matmul(x, kernel, bias=None, output_features=None):
    return apply_linear_map(x, _selected(linear_maps.matmul_map(x.shape, kernel, bias), output_features), "matmul")


def conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid", output_rows=None, output_features=None):
    linear_map = linear_maps.conv2d_map(x.shape, kernel, bias, strides, padding, output_rows)
    return apply_linear_map(x, _selected(linear_map, output_features), "conv2d")


def _selected(linear_map, output_features):
    """Only the rows of ``output_features`` (pruned outputs are never computed)."""
    return linear_map if output_features is None else linear_map.select(output_features)


def sum_pool2d(x, pool_size, strides, padding="valid"):
    return apply_linear_map(x, linear_maps.pool2d_map(x.shape, pool_size, strides, padding, average=False),
                            "sum_pool2d")


def avg_pool2d(x, pool_size, strides, padding="valid"):
    if x.scheme == "bfv":
        raise NotImplementedError(
            "avg_pool2d divides, which BFV cannot do exactly on integers; use sum_pool2d and fold "
            "the 1/(window size) factor into the next layer's weights (heras does this).")
    return apply_linear_map(x, linear_maps.pool2d_map(x.shape, pool_size, strides, padding, average=True),
                            "avg_pool2d")


def reshape(x, shape):
    """Change the feature shape: ciphertexts stay in place (features are stored in C order)."""
    return EncryptedTensor(x.context, x.data, shape, x.batch_size, x.bound, x.noise_used_bits, x.depth_used)


def sum(x, axes):  # noqa: A001 - mirrors numpy/keras naming
    return apply_linear_map(x, linear_maps.sum_map(x.shape, axes), "sum")


# Raw SEAL exceptions never reach the user: every op translates them (see seal_errors.py).
for _name in __all__:
    globals()[_name] = translated(globals()[_name])
del _name
