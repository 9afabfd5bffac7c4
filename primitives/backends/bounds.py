"""Bounds backend: the plain ops applied to per-feature bounds on |value| (interval arithmetic).

|x + y| <= |x| + |y|; |x * y| <= |x| |y|; |W x + b| <= |W| |x| + |b|; |sum c_k x^k| <= sum |c_k| |x|^k.
Each function takes and returns :class:`BoundTensor`; plain operands enter as absolute values.
These are the formulas the encrypted backend uses, so both prove the same bounds.

When the input carries a :class:`~primitives.bound_tensor.CKKSErrorModel`, every op also
bounds the CKKS error, mirroring what the encrypted backend does (``d`` = the model's
``op_error``, ``r`` = its ``encoding_error``, B = value bound, E = error bound):

- ciphertext + ciphertext: E_x + E_y + d + max(B_x, B_y) r (a scale match may multiply one
  operand by 1.0 and rescale); + plain constant: E + r;
- plain factor c (constant per feature): |c| E + B r + d (encode c, multiply, rescale);
- linear map with weights w (rescaled unless every weight is +-1): sum |w_j| E_j, plus, when
  rescaled, sum over non-zero w_j of B_j r, plus d; a non-zero bias adds r;
- ciphertext product: B_x E_y + B_y E_x + E_x E_y + d (relinearise, rescale); square likewise;
- polynomial: the powers by squaring as the encrypted backend builds them, each term
  |c_k| E_k + B_k r + d, the constant + r.

Per-sample plain operands (a different value in each slot) are encoded as a whole slot vector,
whose rounding error can reach n/2 times a constant's: they count ``SLOT_ENCODING_FACTOR`` r.
"""

import numpy as np

from ..bound_tensor import BoundTensor
from . import plain

SLOT_ENCODING_FACTOR = 2.0 ** 15  # n <= 32768: a slot vector's rounding error <= n * 0.5 / scale


def _abs(value):
    if isinstance(value, BoundTensor):
        return value.bound
    array = np.asarray(value)
    return np.abs(array.astype(object) if array.dtype.kind in "iuO" else array)


def _float(value):
    return np.asarray(value, dtype=np.float64)


def _lift(bound):
    """Bounds as a batch of one for the plain backend's (batch, ...) ops."""
    return bound[None]


def _result(x, bound, error=None):
    """A BoundTensor like ``x`` (same error model); ``error`` is only computed when tracked."""
    if x.error_model is None:
        return BoundTensor(bound)
    return BoundTensor(bound, error=error(), error_model=x.error_model)


def _per_sample(x, y):
    return not isinstance(y, BoundTensor) and np.ndim(y) > len(x.shape)


def add(x, y):
    model = x.error_model
    if isinstance(y, BoundTensor):
        def error():
            ey = y.error if y.error is not None else 0.0
            match = model.op_error + np.maximum(_float(x.bound), _float(y.bound)) * model.encoding_error
            return x.error + ey + match
        return _result(x, x.bound + y.bound, error)
    if _per_sample(x, y):
        return _result(x, x.bound + _abs(y).max(axis=0),
                       lambda: x.error + SLOT_ENCODING_FACTOR * model.encoding_error
                       + np.zeros(np.shape(y)[1:]))
    return _result(x, x.bound + _abs(y), lambda: x.error + model.encoding_error + np.zeros(np.shape(y)))


subtract = add


def negate(x):
    return _result(x, x.bound, lambda: x.error)


def multiply(x, y):
    model = x.error_model
    if isinstance(y, BoundTensor):
        return _product(x, y)
    if _per_sample(x, y):
        factor = _abs(y).max(axis=0)
        encoding = SLOT_ENCODING_FACTOR * model.encoding_error if model else 0.0
    else:
        factor = _abs(y)
        encoding = model.encoding_error if model else 0.0
    return _result(x, x.bound * factor,
                   lambda: x.error * _float(factor) + _float(x.bound) * encoding + model.op_error)


def _product(x, y):
    def error():
        model = x.error_model or y.error_model
        bx, by = _float(x.bound), _float(y.bound)
        ex = x.error if x.error is not None else 0.0
        ey = y.error if y.error is not None else 0.0
        return bx * ey + by * ex + ex * ey + model.op_error
    if x.error_model is None and y.error_model is not None:
        x, y = y, x
    return _result(x, x.bound * y.bound, error)


def square(x):
    return _product(x, x)


def polynomial(x, coefficients):
    bound = plain.polynomial(x.bound, [abs(c) for c in coefficients])
    return _result(x, bound, lambda: _polynomial_error(x, coefficients))


def _polynomial_error(x, coefficients):
    """The error of arithmetic.polynomial: powers by squaring, one plain product per term."""
    model = x.error_model
    d, r = model.op_error, model.encoding_error
    powers = {1: (_float(x.bound), x.error)}

    def power(k):
        if k not in powers:
            if k % 2 == 0:
                b, e = power(k // 2)
                powers[k] = (b * b, 2 * b * e + e * e + d)
            else:
                (b1, e1), (b, e) = power(k - 1), powers[1]
                powers[k] = (b1 * b, b1 * e + b * e1 + e1 * e + d)
        return powers[k]

    terms = [(k, c) for k, c in enumerate(coefficients) if k > 0 and c != 0]
    constant = r if coefficients[0] != 0 else 0.0
    if not terms:
        return x.error * 0 + d + constant   # a multiplication by 0 (an encryption of zero)
    total = 0.0
    for k, c in terms:
        b, e = power(k)
        total = total + abs(c) * e + b * r + d
    return total + constant


def _linear_error(x, apply, kernel, bias):
    """sum |w| E (+ when rescaled: sum over non-zero w of B r, + d) (+ r for a bias)."""
    model = x.error_model
    weights = _float(_abs(kernel))
    nonzero = (weights != 0).astype(np.float64)
    rescale = bool(np.any(weights[weights != 0] != 1))
    error = apply(_lift(x.error), weights)[0]
    taps = apply(np.ones((1,) + x.shape), nonzero)[0]
    if rescale:
        error = error + apply(_lift(_float(x.bound)), nonzero)[0] * model.encoding_error + model.op_error
    else:
        error = error + np.where(taps == 0, model.op_error, 0.0)  # an empty row: an encryption of 0
    if bias is not None:
        error = error + np.where(_float(_abs(bias)) != 0, model.encoding_error, 0.0)
    return error


def matmul(x, kernel, bias=None, output_features=None):
    bound = plain.matmul(_lift(x.bound), _abs(kernel), None if bias is None else _abs(bias))[0]
    result = _result(x, bound, lambda: _linear_error(x, lambda v, k: plain.matmul(v, k), kernel, bias))
    return result if output_features is None else _features(result, output_features)


def conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid", output_rows=None, output_features=None):
    rows = slice(None) if output_rows is None else slice(*output_rows)
    out = plain.conv2d(_lift(x.bound), _abs(kernel), None if bias is None else _abs(bias), strides, padding)
    result = _result(x, out[0][rows], lambda: _linear_error(
        x, lambda v, k: plain.conv2d(v, k, None, strides, padding)[:, rows], kernel, bias))
    return result if output_features is None else _features(result, output_features)


def _features(x, features):
    """The given flat features of ``x`` (outputs computed alone: the same bounds and errors)."""
    return _result(x, x.bound.reshape(-1)[features], lambda: x.error.reshape(-1)[features])


def sum_pool2d(x, pool_size, strides, padding="valid"):
    return _result(x, plain.sum_pool2d(_lift(x.bound), pool_size, strides, padding)[0],
                   lambda: plain.sum_pool2d(_lift(x.error), pool_size, strides, padding)[0])


def avg_pool2d(x, pool_size, strides, padding="valid"):
    def error():
        model = x.error_model
        counts = plain.sum_pool2d(np.ones((1,) + x.shape), pool_size, strides, padding)[0]
        averaged = plain.avg_pool2d(_lift(x.error), pool_size, strides, padding)[0]
        if np.all(counts == 1):
            return averaged                 # weights of 1: no rescaling
        window = plain.sum_pool2d(_lift(_float(x.bound)), pool_size, strides, padding)[0]
        return averaged + window * model.encoding_error + model.op_error
    return _result(x, plain.avg_pool2d(_lift(x.bound), pool_size, strides, padding)[0], error)


def reshape(x, shape):
    return _result(x, x.bound.reshape(shape), lambda: x.error.reshape(shape))


def sum(x, axes):  # noqa: A001 - mirrors numpy/keras naming
    return _result(x, np.sum(x.bound, axis=tuple(axes)), lambda: np.sum(x.error, axis=tuple(axes)))
