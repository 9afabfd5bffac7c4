"""Sparse linear maps: dense, convolution, pooling and sums as "output k = sum_j w_kj x_j + b_k".

On batch-in-slots ciphertexts every linear layer is such a map applied feature by feature, so
the encrypted backend needs one kernel (:func:`apply_linear_map` in the encrypted backend) and
these builders turn each layer's geometry into compressed-sparse-row form. Zero weights are
dropped here once: multiplying a ciphertext by 0 is wasted work (and SEAL refuses the
transparent result). Pure numpy: no ciphertexts in this module.
"""

from dataclasses import dataclass

import numpy as np

from .errors import ShapeError

PADDINGS = ("valid", "same")


@dataclass(frozen=True)
class LinearMap:
    """out[k] = sum(weights[indptr[k]:indptr[k+1]] * x[indices[indptr[k]:indptr[k+1]]]) + bias[k].

    Attributes:
        in_shape, out_shape: per-sample feature shapes.
        indptr, indices, weights: CSR rows, one per output feature (C order).
        bias: per-output constant, or None.
    """

    in_shape: tuple
    out_shape: tuple
    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    bias: np.ndarray | None = None

    @property
    def out_size(self):
        return int(np.prod(self.out_shape, dtype=np.int64))

    def row(self, k):
        """Return ``(input indices, weights)`` of output ``k``."""
        start, stop = self.indptr[k], self.indptr[k + 1]
        return self.indices[start:stop], self.weights[start:stop]

    def select(self, features):
        """The map of outputs ``features`` only (flat C-order indices of ``out_shape``), as a
        flat output of ``len(features)`` features: the rows of a layer whose other outputs are
        not needed (heras leaves pruned positions out this way)."""
        features = check_output_features(features, self.out_size)
        starts, stops = self.indptr[features], self.indptr[features + 1]
        lengths = stops - starts
        taps = np.concatenate([np.arange(a, b) for a, b in zip(starts.tolist(), stops.tolist())] or
                              [np.zeros(0, dtype=np.int64)]).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        bias = None if self.bias is None else self.bias[features]
        return LinearMap(self.in_shape, (len(features),), indptr, self.indices[taps],
                         np.ascontiguousarray(self.weights[taps]), bias)

    def row_abs_sums(self):
        """Return sum_j |w_kj| per output (exact Python ints for integer weights)."""
        weights = np.abs(self.weights.astype(object) if self.weights.dtype.kind in "iuO" else self.weights)
        sums = np.zeros(self.out_size, dtype=weights.dtype)
        np.add.at(sums, np.repeat(np.arange(self.out_size), np.diff(self.indptr)), weights)
        return sums


def from_taps(in_shape, out_shape, index, weight, bias=None):
    """Build a LinearMap from dense tap tables, dropping padding (index < 0) and zero weights.

    Args:
        index: (out_size, taps) flat input indices, -1 for padding.
        weight: (out_size, taps) weights, broadcastable to ``index``.
    """
    weight = np.broadcast_to(weight, index.shape)
    keep = (index >= 0) & (weight != 0)
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))]).astype(np.int64)
    return LinearMap(tuple(in_shape), tuple(out_shape), indptr, index[keep].astype(np.int64),
                     np.ascontiguousarray(weight[keep]), None if bias is None else np.asarray(bias).ravel())


def matmul_map(in_shape, kernel, bias=None):
    """x (..., m) @ kernel (m, p) + bias (p,): contracts the last feature axis."""
    in_shape = tuple(in_shape)
    if kernel.ndim != 2 or not in_shape or in_shape[-1] != kernel.shape[0]:
        raise ShapeError(f"matmul: inputs with feature shape {in_shape} need a kernel of shape "
                         f"({in_shape[-1] if in_shape else '?'}, units). Received kernel shape {kernel.shape}.")
    m, p = kernel.shape
    lead = int(np.prod(in_shape[:-1], dtype=np.int64))
    index = (np.arange(lead)[:, None, None] * m + np.arange(m)[None, None, :]).repeat(p, axis=1)
    weight = np.broadcast_to(kernel.T[None], (lead, p, m))
    full_bias = None if bias is None else np.broadcast_to(np.asarray(bias), (lead, p))
    return from_taps(in_shape, in_shape[:-1] + (p,), index.reshape(lead * p, m),
                     weight.reshape(lead * p, m), full_bias)


def same_padding(size, kernel, stride):
    """Keras/TensorFlow 'same' padding: (before, after) so that out = ceil(size / stride)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def conv_geometry(in_shape, kernel_size, strides, padding):
    """Return ((pad_top, pad_bottom), (pad_left, pad_right), out_h, out_w) for a 2-D window."""
    if len(in_shape) != 3:
        raise ShapeError(f"2-D windows need per-sample inputs of shape (height, width, channels). "
                         f"Received feature shape {tuple(in_shape)}.")
    if padding not in PADDINGS:
        raise ValueError(f"Expected `padding` to be one of {list(PADDINGS)}. Received: padding={padding!r}")
    (h, w, _), (kh, kw), (sh, sw) = in_shape, kernel_size, strides
    if padding == "same":
        pads = same_padding(h, kh, sh), same_padding(w, kw, sw)
    else:
        pads = (0, 0), (0, 0)
    out_h = (h + sum(pads[0]) - kh) // sh + 1
    out_w = (w + sum(pads[1]) - kw) // sw + 1
    if out_h < 1 or out_w < 1:
        raise ShapeError(f"A {kh}x{kw} window does not fit inputs of shape {tuple(in_shape)} with "
                         f"padding={padding!r}. Use padding='same' or a smaller window.")
    return pads[0], pads[1], out_h, out_w


def patch_indices(in_shape, kernel_size, strides, padding):
    """Return (out_h, out_w, kh, kw, channels) flat input indices of each window, -1 = padding."""
    (top, bottom), (left, right), out_h, out_w = conv_geometry(in_shape, kernel_size, strides, padding)
    h, w, c = in_shape
    grid = np.full((h + top + bottom, w + left + right, c), -1, dtype=np.int64)
    grid[top:top + h, left:left + w] = np.arange(h * w * c).reshape(h, w, c)
    rows = np.arange(out_h)[:, None] * strides[0] + np.arange(kernel_size[0])[None, :]
    cols = np.arange(out_w)[:, None] * strides[1] + np.arange(kernel_size[1])[None, :]
    return grid[rows[:, None, :, None], cols[None, :, None, :]]


def conv2d_map(in_shape, kernel, bias=None, strides=(1, 1), padding="valid", output_rows=None):
    """2-D convolution, channels last; kernel (kh, kw, in_channels, filters).

    ``output_rows=(start, stop)`` keeps output rows [start, stop) of the feature map only
    (all columns and filters): the map of a horizontal band, which reads a band of the input.
    """
    in_shape = tuple(in_shape)
    if kernel.ndim != 4 or len(in_shape) != 3 or kernel.shape[2] != in_shape[2]:
        raise ShapeError(f"conv2d: inputs of feature shape (height, width, channels)={in_shape} need "
                         f"a kernel of shape (kh, kw, {in_shape[2] if len(in_shape) == 3 else 'channels'}, "
                         f"filters). Received kernel shape {kernel.shape}.")
    kh, kw, c, filters = kernel.shape
    patches = patch_indices(in_shape, (kh, kw), strides, padding)
    if output_rows is not None:
        start, stop = check_output_rows(output_rows, patches.shape[0])
        patches = patches[start:stop]
    out_h, out_w = patches.shape[:2]
    taps = patches.reshape(out_h * out_w, 1, kh * kw * c).repeat(filters, axis=1)
    weight = np.broadcast_to(kernel.reshape(kh * kw * c, filters).T[None], taps.shape)
    full_bias = None if bias is None else np.broadcast_to(np.asarray(bias), (out_h * out_w, filters))
    return from_taps(in_shape, (out_h, out_w, filters), taps.reshape(-1, kh * kw * c),
                     weight.reshape(-1, kh * kw * c), full_bias)


def check_output_rows(output_rows, out_h):
    """``output_rows`` as a (start, stop) pair with 0 <= start < stop <= out_h, or ShapeError."""
    try:
        start, stop = (int(r) for r in output_rows)
    except (TypeError, ValueError):
        raise ShapeError(f"Expected `output_rows` to be a (start, stop) pair of integers. "
                         f"Received: output_rows={output_rows!r}") from None
    if not 0 <= start < stop <= out_h:
        raise ShapeError(f"`output_rows` must satisfy 0 <= start < stop <= {out_h} (the output's "
                         f"height). Received: output_rows={output_rows!r}")
    return start, stop


def check_output_features(features, out_size):
    """``features`` as a non-empty int64 array of distinct flat output indices in [0, out_size)."""
    array = np.asarray(features)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "iu":
        raise ShapeError(f"Expected `output_features` to be a non-empty 1-D array of integer feature "
                         f"indices. Received an array of shape {array.shape} and dtype {array.dtype}.")
    array = array.astype(np.int64)
    if array.min() < 0 or array.max() >= out_size or np.unique(array).size != array.size:
        raise ShapeError(f"`output_features` must be distinct indices in [0, {out_size}) (the layer's "
                         f"output features). Received values from {array.min()} to {array.max()}.")
    return array


def pool2d_map(in_shape, pool_size, strides, padding, average):
    """Sum (or average, dividing by the valid window size as Keras does) per channel."""
    in_shape = tuple(in_shape)
    patches = patch_indices(in_shape, pool_size, strides, padding)
    out_h, out_w, kh, kw, c = patches.shape
    taps = patches.transpose(0, 1, 4, 2, 3).reshape(out_h * out_w * c, kh * kw)
    if average:
        weight = np.where(taps >= 0, 1.0 / np.maximum((taps >= 0).sum(axis=1, keepdims=True), 1), 0.0)
    else:
        weight = np.ones(taps.shape, dtype=np.int64)
    return from_taps(in_shape, (out_h, out_w, c), taps, weight)


def sum_map(in_shape, axes):
    """Sum over the given per-sample feature axes (0-based within the feature shape)."""
    in_shape = tuple(in_shape)
    kept = [a for a in range(len(in_shape)) if a not in axes]
    order = kept + list(axes)
    index = np.arange(int(np.prod(in_shape, dtype=np.int64))).reshape(in_shape).transpose(order)
    out_shape = tuple(in_shape[a] for a in kept)
    out_size = int(np.prod(out_shape, dtype=np.int64))
    index = index.reshape(out_size, -1)
    return from_taps(in_shape, out_shape, index, np.ones(index.shape, dtype=np.int64))
