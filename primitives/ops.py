"""Public ops: check arguments, then dispatch to the plain or the encrypted backend per call.

Every op treats axis 0 as the batch, like a Keras layer. When any operand is an
:class:`EncryptedTensor` the encrypted backend runs (public material only); when one is a
TensorFlow or Keras tensor, ``keras.ops`` does (so heras layers train with autodiff);
otherwise numpy does, exactly (int64 or Python ints) for integers. One model definition therefore runs both
ways: the plain run is the oracle for the encrypted one.

Example:
    >>> from primitives import ops, select_parameters, Context
    >>> ctx = Context(select_parameters("bfv", depth=1, max_value=10_000))
    >>> x = ops.encrypt(ctx, [[1, -2, 3]])
    >>> y = ops.square(ops.matmul(x, [[1], [2], [3]]))
    >>> ops.decrypt(ctx, y)
    array([[36]])
"""

import math
import numbers

import numpy as np

from . import linear_maps
from .backends import bounds, encrypted, plain
from .bound_tensor import BoundTensor
from .encrypted_tensor import EncryptedTensor
from .errors import ShapeError


def is_encrypted(x):
    """True when ``x`` is an :class:`EncryptedTensor`."""
    return isinstance(x, EncryptedTensor)


def is_framework_tensor(x):
    """True for TensorFlow tensors and variables and (symbolic) Keras tensors."""
    return type(x).__module__.split(".")[0] in ("tensorflow", "keras", "tf_keras")


def _is_special(x):
    """Encrypted tensors and bounds go first in commutative ops (their backends expect it)."""
    return is_encrypted(x) or isinstance(x, BoundTensor)


def _backend(*operands):
    if any(is_encrypted(o) for o in operands):
        return encrypted
    if any(isinstance(o, BoundTensor) for o in operands):
        return bounds
    if any(is_framework_tensor(o) for o in operands):
        from .backends import tensorflow
        return tensorflow
    return plain


def _array(x, name):
    if is_encrypted(x) or is_framework_tensor(x) or isinstance(x, BoundTensor):
        return x
    array = np.asarray(x)
    if array.dtype == object or array.dtype.kind in "biuf":
        return array
    raise TypeError(f"Expected `{name}` to be numeric (array, number or EncryptedTensor). "
                    f"Received dtype {array.dtype}.")


def _features(x, name):
    """Per-sample feature shape of ``x`` (axis 0 is the batch)."""
    if is_encrypted(x) or isinstance(x, BoundTensor):
        return x.shape
    if is_framework_tensor(x):
        return tuple(x.shape)[1:]
    if np.ndim(x) < 1:
        raise ShapeError(f"Expected `{name}` to have a batch axis (shape (batch, ...)). "
                         f"Received a scalar.")
    return np.shape(x)[1:]


def _pair(value, name):
    if isinstance(value, numbers.Integral):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, numbers.Integral) and v >= 1 for v in value):
        raise ValueError(f"Expected `{name}` to be a positive integer or a pair of them. Received: {name}={value!r}")
    return tuple(int(v) for v in value)


# ----------------------------------------------------------------- client side
def encrypt(context, x, bound=None):
    """Encrypt ``x`` of shape (batch, *features) under ``context``; see `codec.encrypt`."""
    return encrypted.encrypt(context, x, bound=bound)


def decrypt(context, x):
    """Decrypt ``x`` to a numpy array of shape (batch, *features); needs the secret key."""
    return encrypted.decrypt(context, x)


# ----------------------------------------------------------------- element-wise
def add(x, y):
    """Return x + y (broadcasting over features); either operand may be encrypted."""
    x, y = _array(x, "x"), _array(y, "y")
    if _is_special(y) and not _is_special(x):
        x, y = y, x
    return _backend(x, y).add(x, y)


def subtract(x, y):
    """Return x - y (broadcasting over features); either operand may be encrypted."""
    x, y = _array(x, "x"), _array(y, "y")
    if _is_special(y) and not _is_special(x):
        backend = _backend(y)
        return backend.negate(backend.subtract(y, x))
    return _backend(x, y).subtract(x, y)


def negate(x):
    """Return -x."""
    x = _array(x, "x")
    return _backend(x).negate(x)


def multiply(x, y):
    """Return x * y element-wise; ciphertext x ciphertext uses one multiplicative level.

    BFV plain factors must be integers. A plain factor without a batch axis (or with batch 1)
    is the same for every sample and multiplies cheaply; one with a full batch axis differs
    per sample.
    """
    x, y = _array(x, "x"), _array(y, "y")
    if _is_special(y) and not _is_special(x):
        x, y = y, x
    return _backend(x, y).multiply(x, y)


def square(x):
    """Return x * x (one multiplicative level when encrypted)."""
    x = _array(x, "x")
    return _backend(x).square(x)


def polynomial(x, coefficients):
    """Return sum_k coefficients[k] * x**k (a polynomial activation).

    Powers are built by squaring, so degree d costs ceil(log2(d)) ciphertext multiplications
    (plus, for CKKS, one level for non-unit coefficients). BFV coefficients must be integers.

    Example:
        >>> polynomial(np.array([[2]]), [1, 0, 3])   # 1 + 3 x^2
        array([[13]])
    """
    coefficients = list(coefficients)
    if not coefficients:
        raise ValueError("Expected at least one polynomial coefficient. Received: []")
    x = _array(x, "x")
    return _backend(x).polynomial(x, coefficients)


# ----------------------------------------------------------------- linear layers
def matmul(x, kernel, bias=None, output_features=None):
    """Return x @ kernel (+ bias): contracts the last feature axis with a plain (m, p) kernel.

    ``output_features`` (flat indices into the output's features, C order) keeps only those
    outputs, as a flat tensor of ``len(output_features)`` features: ciphertexts and bounds
    compute just them (heras leaves pruned positions out this way), other backends select.

    Example:
        >>> matmul(np.array([[1, 2]]), np.array([[3], [4]]), bias=[1])
        array([[12]])
    """
    x = _array(x, "x")
    kernel = _array(kernel, "kernel")
    if is_encrypted(kernel):
        raise TypeError("matmul needs a plain kernel (encrypted weights are not supported yet).")
    features = _features(x, "x")
    if len(kernel.shape) != 2 or not features or features[-1] != kernel.shape[0]:
        raise ShapeError(f"matmul: inputs with feature shape {features} need a kernel of shape "
                         f"({features[-1] if features else 'm'}, units). Received kernel shape {kernel.shape}.")
    bias = _bias(bias, kernel.shape[1])
    backend = _backend(x)
    if output_features is None:
        return backend.matmul(x, kernel, bias)
    features = linear_maps.check_output_features(output_features, math.prod(features[:-1]) * kernel.shape[1])
    if backend is encrypted or backend is bounds:
        return backend.matmul(x, kernel, bias, output_features=features)
    return _take_features(backend, backend.matmul(x, kernel, bias), features)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", output_rows=None, output_features=None):
    """2-D convolution, channels last: x (batch, h, w, c), kernel (kh, kw, c, filters).

    Args:
        strides: an int or (sh, sw).
        padding: "valid" (no padding) or "same" (Keras/TensorFlow zero padding).
        output_rows: optional (start, stop): only output rows [start, stop) of the feature map,
            i.e. ``conv2d(x, ...)[:, start:stop]``. Ciphertexts compute just those rows (heras
            streams wide convolutions band by band); other backends slice the full result.
        output_features: optional flat indices into the output's (height, width, filters)
            features, C order: only those outputs, as a flat tensor of ``len(output_features)``
            features (heras leaves pruned positions out this way). Not with ``output_rows``.
    """
    x = _array(x, "x")
    kernel = _array(kernel, "kernel")
    features = _features(x, "x")
    if len(kernel.shape) != 4 or len(features) != 3 or kernel.shape[2] != features[2]:
        raise ShapeError(f"conv2d: inputs of feature shape (height, width, channels) = {features} "
                         f"need a kernel of shape (kh, kw, channels, filters). Received kernel shape {kernel.shape}.")
    bias = _bias(bias, kernel.shape[3])
    strides, padding = _pair(strides, "strides"), _padding(padding)
    backend = _backend(x)
    if output_features is not None:
        if output_rows is not None:
            raise ValueError("conv2d: give `output_rows` or `output_features`, not both.")
        _, _, out_h, out_w = linear_maps.conv_geometry(features, kernel.shape[:2], strides, padding)
        selected = linear_maps.check_output_features(output_features, out_h * out_w * kernel.shape[3])
        if backend is encrypted or backend is bounds:
            return backend.conv2d(x, kernel, bias, strides, padding, output_features=selected)
        return _take_features(backend, backend.conv2d(x, kernel, bias, strides, padding), selected)
    if output_rows is None:
        return backend.conv2d(x, kernel, bias, strides, padding)
    out_h = linear_maps.conv_geometry(features, kernel.shape[:2], strides, padding)[2]
    start, stop = linear_maps.check_output_rows(output_rows, out_h)
    if backend is encrypted or backend is bounds:
        return backend.conv2d(x, kernel, bias, strides, padding, output_rows=(start, stop))
    return backend.conv2d(x, kernel, bias, strides, padding)[:, start:stop]


def sum_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Sum over pool windows per channel (the exact, BFV-friendly pooling)."""
    x, pool_size, strides, padding = _pool_args(x, pool_size, strides, padding)
    return _backend(x).sum_pool2d(x, pool_size, strides, padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average over pool windows per channel (CKKS and plain; BFV: use sum_pool2d)."""
    x, pool_size, strides, padding = _pool_args(x, pool_size, strides, padding)
    return _backend(x).avg_pool2d(x, pool_size, strides, padding)


def reshape(x, shape):
    """Reshape the per-sample features to ``shape`` (the batch axis is kept, as in keras Reshape)."""
    x = _array(x, "x")
    features = _features(x, "x")
    shape = tuple(int(s) for s in shape)
    size = math.prod(features)
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if shape.count(-1) > 1 or known == 0 or size % known:
            raise ShapeError(f"Cannot reshape features {features} to {shape}.")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if math.prod(shape) != size:
        raise ShapeError(f"Cannot reshape features {features} ({size} values) to {shape} "
                         f"({math.prod(shape)} values).")
    return _backend(x).reshape(x, shape)


def flatten(x):
    """Reshape the per-sample features to one axis."""
    return reshape(x, (-1,))


def sum(x, axis=-1):  # noqa: A001 - mirrors numpy/keras naming
    """Sum over feature axes. ``axis`` counts the batch as axis 0 (as numpy does), and summing
    across the batch is not offered for encrypted tensors (it would need slot rotations)."""
    x = _array(x, "x")
    rank = len(_features(x, "x")) + 1
    axes = (axis,) if isinstance(axis, numbers.Integral) else tuple(axis)
    normalised = []
    for a in axes:
        if not -rank <= a < rank:
            raise ShapeError(f"sum: axis {a} is out of range for a tensor of rank {rank}.")
        a = a % rank
        if a == 0:
            raise ShapeError("sum over axis 0 (the batch) is not supported: samples live in "
                             "separate slots. Sum feature axes (1 and up), or sum after decryption.")
        normalised.append(a - 1)
    return _backend(x).sum(x, tuple(sorted(set(normalised))))


def _take_features(backend, result, features):
    """The given flat features of a (batch, ...) result, as (batch, len(features))."""
    if backend is plain:
        result = np.asarray(result)
        return result.reshape(result.shape[0], -1)[:, features]
    import keras
    return keras.ops.take(keras.ops.reshape(result, (keras.ops.shape(result)[0], -1)), features, axis=1)


# ----------------------------------------------------------------- argument helpers
def _bias(bias, size):
    if bias is None:
        return None
    bias = _array(bias, "bias")
    if is_encrypted(bias) or tuple(bias.shape) not in ((size,), ()):
        raise ShapeError(f"Expected `bias` to be a plain vector of shape ({size},). Received "
                         f"{'an EncryptedTensor' if is_encrypted(bias) else tuple(bias.shape)}.")
    return bias if is_framework_tensor(bias) else np.broadcast_to(bias, (size,))


def _padding(padding):
    if padding not in ("valid", "same"):
        raise ValueError(f"Expected `padding` to be 'valid' or 'same'. Received: padding={padding!r}")
    return padding


def _pool_args(x, pool_size, strides, padding):
    x = _array(x, "x")
    features = _features(x, "x")
    if len(features) != 3:
        raise ShapeError(f"Pooling needs inputs of feature shape (height, width, channels). Received {features}.")
    pool_size = _pair(pool_size, "pool_size")
    strides = pool_size if strides is None else _pair(strides, "strides")
    return x, pool_size, strides, _padding(padding)
