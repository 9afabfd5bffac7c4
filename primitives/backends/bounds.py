"""Bounds backend: the plain ops applied to per-feature bounds on |value| (interval arithmetic).

|x + y| <= |x| + |y|; |x * y| <= |x| |y|; |W x + b| <= |W| |x| + |b|; |sum c_k x^k| <= sum |c_k| |x|^k.
Each function takes and returns :class:`BoundTensor`; plain operands enter as absolute values.
These are the formulas the encrypted backend uses, so both prove the same bounds.
"""

import numpy as np

from ..bound_tensor import BoundTensor
from . import plain


def _abs(value):
    if isinstance(value, BoundTensor):
        return value.bound
    array = np.asarray(value)
    return np.abs(array.astype(object) if array.dtype.kind in "iuO" else array)


def _lift(bound):
    """Bounds as a batch of one for the plain backend's (batch, ...) ops."""
    return bound[None]


def add(x, y):
    if isinstance(y, BoundTensor) or np.ndim(y) <= len(x.shape):
        return BoundTensor(x.bound + _abs(y))
    return BoundTensor(x.bound + _abs(y).max(axis=0))  # a per-sample plain operand


subtract = add


def negate(x):
    return BoundTensor(x.bound)


def multiply(x, y):
    if isinstance(y, BoundTensor) or np.ndim(y) <= len(x.shape):
        return BoundTensor(x.bound * _abs(y))
    return BoundTensor(x.bound * _abs(y).max(axis=0))


def square(x):
    return BoundTensor(x.bound * x.bound)


def polynomial(x, coefficients):
    return BoundTensor(plain.polynomial(x.bound, [abs(c) for c in coefficients]))


def matmul(x, kernel, bias=None):
    return BoundTensor(plain.matmul(_lift(x.bound), _abs(kernel), None if bias is None else _abs(bias))[0])


def conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid"):
    out = plain.conv2d(_lift(x.bound), _abs(kernel), None if bias is None else _abs(bias), strides, padding)
    return BoundTensor(out[0])


def sum_pool2d(x, pool_size, strides, padding="valid"):
    return BoundTensor(plain.sum_pool2d(_lift(x.bound), pool_size, strides, padding)[0])


def avg_pool2d(x, pool_size, strides, padding="valid"):
    return BoundTensor(plain.avg_pool2d(_lift(x.bound), pool_size, strides, padding)[0])


def reshape(x, shape):
    return BoundTensor(x.bound.reshape(shape))


def sum(x, axes):  # noqa: A001 - mirrors numpy/keras naming
    return BoundTensor(np.sum(x.bound, axis=tuple(axes)))
