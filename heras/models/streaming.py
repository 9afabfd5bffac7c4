"""Stream a wide hidden layer block by block, so its ciphertexts never all exist at once.

In CNN-16 the convolution's 3,136 outputs, squared, feed one Dense layer. Layer by layer,
all 3,136 ciphertexts (x 5 CRT primes, x 3 polynomials after a square) are alive together:
about 12 GB at n = 8192. But the Dense layer is linear, so

    Dense(f(A(x))) = sum over blocks B of  W[B] . f(A_B(x))  + bias

where A_B is the first linear layer restricted to a block B of its outputs and f acts
feature by feature. :func:`run_sequential` finds such segments in a Sequential model

    Dense | Conv2D  ->  element-wise layers (Square, Poly, Activation, Dropout, folded
    BatchNormalization), at most one Flatten  ->  Dense

and computes them one block at a time, summing the partial Dense outputs in a binary tree
(log2(blocks) additions deep). A Dense is cut into blocks of units; a Conv2D into bands of
output rows with all filters (:func:`row_bands`), which read a band of the input each: cut by
filters instead, every block would read (and the coefficient kernel split into limbs) every
input again, and its few filters would make small, inefficient matrix products (CNN-16 at
n=8192, one CRT prime: the convolution took 9.3 s in 8 blocks of 2 filters). Only public ``primitives`` ops are used, so bounds
and noise are tracked and checked as for any computation; the partial bounds add up to
exactly the layer-by-layer bound. BFV results are the same integers as layer by layer
(every op is exact mod t); the decrypted outputs are equal bit for bit (tested).

Only BFV is streamed: a CKKS Dense rescales each partial sum, which adds rounding errors that
the proven CKKS error bound (computed layer by layer) does not count.

``$SEALION_STREAM_FEATURES`` (default :data:`DEFAULT_BLOCK_FEATURES`) caps the hidden
features per block; 0 turns streaming off.
"""

import math

import numpy as np

import primitives as P
from primitives.settings import integer_setting

from ..layers.base import LinearWithActivation
from ..layers.core import Dense, Flatten

DEFAULT_BLOCK_FEATURES = 392
ENVIRONMENT_VARIABLE = "SEALION_STREAM_FEATURES"


def block_features_setting():
    """Hidden features per streamed block: $SEALION_STREAM_FEATURES, else the default; 0 = off."""
    return integer_setting(ENVIRONMENT_VARIABLE, DEFAULT_BLOCK_FEATURES, minimum=0)


def find_segment(layers, start):
    """The end index (exclusive) of a streamable segment starting at ``layers[start]``, or None."""
    if not isinstance(layers[start], LinearWithActivation):
        return None
    flattened = False
    for end in range(start + 1, len(layers)):
        layer = layers[end]
        if isinstance(layer, Dense):
            return end + 1 if end > start + 1 else None
        if getattr(layer, "elementwise", False):
            continue
        if isinstance(layer, Flatten) and not flattened:
            flattened = True
            continue
        return None
    return None


def row_bands(hidden_shape, block_features):
    """[start, stop) output-row ranges of a (height, width, channels) map: bands of about
    ``block_features`` features (rounded to whole rows, at least one row)."""
    height, per_row = int(hidden_shape[0]), math.prod(hidden_shape[1:])
    rows = max(1, round(block_features / per_row))
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


def channel_blocks(hidden_shape, block_features):
    """[start, stop) channel ranges of at most ``block_features`` features each (>= 1 channel)."""
    channels = int(hidden_shape[-1])
    width = max(1, block_features // math.prod(hidden_shape[:-1]))
    return [(c, min(c + width, channels)) for c in range(0, channels, width)]


def _rows(hidden_shape, start, stop):
    """Rows of the Dense kernel that read hidden channels [start, stop), in the order Flatten
    lays out the block (spatial position major, channel minor)."""
    channels = int(hidden_shape[-1])
    positions = math.prod(hidden_shape[:-1])
    return (np.arange(positions)[:, None] * channels + np.arange(start, stop)[None, :]).ravel()


def blocks_for(first, hidden_shape, block_features):
    """[(compute the block's hidden outputs from x, rows of the Dense kernel they feed)]."""
    if len(hidden_shape) == 3 and hasattr(first, "call_rows"):
        per_row = math.prod(hidden_shape[1:])
        return [(lambda x, a=a, b=b: first.call_rows(x, a, b), np.arange(a * per_row, b * per_row))
                for a, b in row_bands(hidden_shape, block_features)]
    return [(lambda x, a=a, b=b: first.call_channels(x, a, b), _rows(hidden_shape, a, b))
            for a, b in channel_blocks(hidden_shape, block_features)]


def run_segment(layers, x, block_features):
    """``layers`` (a segment from :func:`find_segment`) applied to ``x`` block by block.

    Returns None when the segment fits in one block (run it layer by layer instead).
    """
    first, middle, dense = layers[0], layers[1:-1], layers[-1]
    hidden_shape = tuple(first.compute_output_shape((None,) + tuple(x.shape))[1:])
    if len(hidden_shape) > 1 and not any(isinstance(layer, Flatten) for layer in middle):
        return None  # the Dense would act on the last axis of a feature map: not one sum
    blocks = blocks_for(first, hidden_shape, block_features)
    if len(blocks) < 2:
        return None
    kernel = dense.weight_for("kernel", x)
    bias = dense.weight_for("bias", x)
    pending = []  # binary-tree sum: (height, partial) with strictly decreasing heights
    for hidden_of, rows in blocks:
        hidden = hidden_of(x)
        for layer in middle:
            hidden = layer.call(hidden)
        partial = P.matmul(P.flatten(hidden), kernel[rows])
        del hidden
        height = 0
        while pending and pending[-1][0] == height:
            partial = P.add(pending.pop()[1], partial)
            height += 1
        pending.append((height, partial))
    total = pending.pop()[1]
    while pending:
        total = P.add(pending.pop()[1], total)
    if bias is not None:
        total = P.add(total, np.asarray(bias))
    return dense.heras_activation(total)


def run_sequential(layers, x, step, progress=None, block_features=None):
    """Run a Sequential model's ``layers`` on the encrypted ``x``, streaming what can be.

    ``step(layer, x)`` runs one layer (and reports progress); ``progress(layer)``, if given, is
    told of each layer of a streamed segment once the segment is done.
    """
    block_features = block_features_setting() if block_features is None else block_features
    stream = block_features > 0 and P.is_encrypted(x) and x.scheme == "bfv"
    index = 0
    while index < len(layers):
        end = find_segment(layers, index) if stream else None
        out = run_segment(layers[index:end], x, block_features) if end else None
        if out is None:
            x = step(layers[index], x)
            index += 1
            continue
        x = out
        for layer in layers[index:end]:
            if progress is not None:
                progress(layer)
        index = end
    return x
