"""Plain (numpy) backend: the same ops as the encrypted backend, on arrays of shape (batch, ...).

It is the oracle the encrypted backend is tested against, so it is written independently of
:mod:`primitives.linear_maps` (convolution by shifted slices, not by tap tables) and works on
int64 and on object arrays of Python ints, so BFV results beyond 2^63 are exact too.
"""

import numpy as np

from ..linear_maps import conv_geometry


def add(x, y):
    return np.add(x, y)


def subtract(x, y):
    return np.subtract(x, y)


def negate(x):
    return np.negative(x)


def multiply(x, y):
    return np.multiply(x, y)


def square(x):
    return np.multiply(x, x)


def polynomial(x, coefficients):
    """sum_k c_k x^k by Horner's rule (exact for integer arrays: int64 inputs whose result
    could pass 2^62 are evaluated in Python ints)."""
    x = np.asarray(x)
    if x.dtype.kind in "iu" and x.size and all(isinstance(c, (int, np.integer)) for c in coefficients):
        largest = int(np.max(np.abs(x.astype(object))))
        worst = 0
        for c in reversed(coefficients):
            worst = worst * largest + abs(int(c))
        if max(worst, largest) >= 2 ** 62:
            x = x.astype(object)
        coefficients = [int(c) for c in coefficients]
    result = np.zeros_like(x) + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def matmul(x, kernel, bias=None):
    out = np.matmul(x, kernel)
    return out if bias is None else out + bias


def conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid"):
    """Channels-last convolution: x (batch, h, w, c), kernel (kh, kw, c, filters)."""
    kh, kw, _, filters = kernel.shape
    padded, out_h, out_w = _pad(x, (kh, kw), strides, padding)
    out = None
    for i in range(kh):
        for j in range(kw):
            window = padded[:, i:i + strides[0] * out_h:strides[0], j:j + strides[1] * out_w:strides[1], :]
            term = np.tensordot(window, kernel[i, j], axes=([3], [0]))
            out = term if out is None else out + term
    return out if bias is None else out + bias


def sum_pool2d(x, pool_size, strides, padding="valid"):
    """Sum over each window, per channel (padding contributes zeros)."""
    padded, out_h, out_w = _pad(x, pool_size, strides, padding)
    out = None
    for i in range(pool_size[0]):
        for j in range(pool_size[1]):
            term = padded[:, i:i + strides[0] * out_h:strides[0], j:j + strides[1] * out_w:strides[1], :]
            out = term if out is None else out + term
    return out


def avg_pool2d(x, pool_size, strides, padding="valid"):
    """Average over the valid (unpadded) part of each window, as Keras does."""
    counts = sum_pool2d(np.ones((1,) + x.shape[1:3] + (1,)), pool_size, strides, padding)
    return sum_pool2d(np.asarray(x, dtype=np.float64), pool_size, strides, padding) / counts


def reshape(x, shape):
    return np.reshape(x, (np.shape(x)[0],) + tuple(shape))


def sum(x, axes):  # noqa: A001 - mirrors numpy/keras naming
    return np.sum(x, axis=tuple(a + 1 for a in axes))


def _pad(x, window, strides, padding):
    (top, bottom), (left, right), out_h, out_w = conv_geometry(x.shape[1:], window, strides, padding)
    if top or bottom or left or right:
        # np.zeros, not np.pad: for object arrays np.pad inserts numpy int64 zeros, which would
        # turn exact Python-int sums into overflowing int64 ones.
        padded = np.zeros((x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3]),
                          dtype=x.dtype)
        padded[:, top:top + x.shape[1], left:left + x.shape[2]] = x
        x = padded
    return x, out_h, out_w
