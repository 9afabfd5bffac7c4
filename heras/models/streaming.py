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
from ..layers.core import Dense, Flatten, Reshape

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


def segment_blocks(layers, x, block_features, computed=None, positions=None):
    """The blocks of the segment ``layers`` (from :func:`find_segment`) on inputs like ``x``,
    or None when it cannot stream or fits in one block (run it layer by layer instead).

    ``computed`` (per layer of the segment, from :func:`heras.models.pruning.computed_features`)
    and ``positions`` (the features ``x`` holds, None for all) describe a pruned model: then the
    blocks cover only the hidden features computed, ``block_features`` at a time (one block if
    ``block_features`` is 0), and a single block is returned too (it still skips the others).
    """
    first = layers[0]
    kept = None if computed is None else computed[0]
    if kept is not None or positions is not None:
        if kept is None:
            kept = np.arange(math.prod(first.compute_output_shape((None,) + tuple(_logical_shape(first, x, positions)))[1:]))
        size = block_features if block_features > 0 else kept.size
        return [(lambda x, f=kept[a:a + size]: first.call_subset(x, positions, f), kept[a:a + size])
                for a in range(0, kept.size, size)]
    return _blocks_for_input(layers, tuple(x.shape), block_features)


def _blocks_for_input(layers, input_shape, block_features):
    """The streamed blocks of an unpruned segment on inputs of per-sample ``input_shape``, or None."""
    if block_features <= 0:
        return None
    first, middle = layers[0], layers[1:-1]
    hidden_shape = tuple(first.compute_output_shape((None,) + tuple(input_shape))[1:])
    if len(hidden_shape) > 1 and not any(isinstance(layer, Flatten) for layer in middle):
        return None  # the Dense would act on the last axis of a feature map: not one sum
    blocks = blocks_for(first, hidden_shape, block_features)
    return blocks if len(blocks) >= 2 else None


def _logical_shape(first, x, positions):
    """The per-sample input shape ``first`` was built for (``x`` may be compact)."""
    return tuple(x.shape) if positions is None else tuple(first.input.shape[1:])


def partial_sum(layers, x, blocks, outputs=None):
    """sum over ``blocks`` of W[B] . f(A_B(x)): the segment's Dense product (no bias) restricted
    to those blocks (and to the Dense's ``outputs``, if given), summed in a binary tree. Each
    block is a progress step (:func:`primitives.progress.report`)."""
    first, middle, dense = layers[0], layers[1:-1], layers[-1]
    kernel = dense.weight_for("kernel", x)
    if outputs is not None:
        kernel = np.asarray(kernel)[:, outputs]
    pending = []  # binary-tree sum: (height, partial) with strictly decreasing heights
    for hidden_of, rows in blocks:
        hidden = hidden_of(x)
        for layer in middle:
            hidden = _call_compact(layer, hidden)
        partial = P.matmul(P.flatten(hidden), kernel[rows])
        del hidden
        P.progress.report("step", f"{first.name}..{dense.name} block")
        height = 0
        while pending and pending[-1][0] == height:
            partial = P.add(pending.pop()[1], partial)
            height += 1
        pending.append((height, partial))
    total = pending.pop()[1]
    while pending:
        total = P.add(pending.pop()[1], total)
    return total


def finish_segment(layers, x, total, outputs=None):
    """The segment's output from the sum of all its blocks: the Dense bias and activation."""
    dense = layers[-1]
    bias = dense.weight_for("bias", x)
    if bias is not None:
        bias = np.asarray(bias)
        total = P.add(total, bias if outputs is None else bias[outputs])
    return dense.heras_activation(total)


def run_segment(layers, x, block_features, computed=None, positions=None):
    """``layers`` (a segment from :func:`find_segment`) applied to ``x`` block by block.

    Returns None when the segment fits in one block (run it layer by layer instead), unless it
    is pruned (``computed``, ``positions``: see :func:`segment_blocks`): one block then runs as
    the layers would, on the computed features only, the Dense's bias inside its product.
    """
    blocks = segment_blocks(layers, x, block_features, computed, positions)
    if blocks is None:
        return None
    outputs = None if computed is None else computed[-1]
    if len(blocks) == 1:
        hidden_of, rows = blocks[0]
        hidden = hidden_of(x)
        for layer in layers[1:-1]:
            hidden = _call_compact(layer, hidden)
        out = layers[-1].call_subset(hidden, rows, outputs)
        P.progress.report("step", f"{layers[0].name}..{layers[-1].name} block")
        return out
    return finish_segment(layers, x, partial_sum(layers, x, blocks, outputs), outputs)


def _call_compact(layer, hidden):
    """An element-wise layer on a compact (flat) tensor; Flatten and Reshape leave it as it is."""
    return hidden if isinstance(layer, (Flatten, Reshape)) else layer.call(hidden)


def shared_component_plan(layers, x, workers, block_features=None, computed=None):
    """How to spread a BFV forward pass over ``workers`` processes when they do not divide the
    CRT components evenly, or None.

    k components on w processes: each process runs k // w components whole, and the k % w
    remaining ("shared") components are split by blocks of the model's leading streamed
    segment, every process computing a share of each one's blocks. 3 primes on 2 cores: 1.5
    primes per process instead of 3 processes taking turns on 2 cores. Returns
    (segment end, blocks, whole component chunks, shared component indices, features computed
    by the segment's Dense or None). ``computed``: see :func:`segment_blocks`.
    """
    components = x.data.shape[0]
    block_features = block_features_setting() if block_features is None else block_features
    if (workers <= 1 or components % workers == 0 or block_features <= 0 or x.scheme != "bfv"
            or not layers):
        return None
    end = find_segment(layers, 0)
    blocks = segment_blocks(layers[:end], x, block_features, computed and computed[:end]) if end else None
    if blocks is None or len(blocks) < workers:
        return None
    whole = components - components % workers
    chunks = np.array_split(np.arange(whole), workers)   # empty chunks when whole == 0
    return end, blocks, chunks, list(range(whole, components)), computed and computed[end - 1]


def run_shared(layers, x, plan, run_whole, run_tail):
    """Run the plan of :func:`shared_component_plan`: ``run_whole(view)`` computes whole
    components, ``run_tail(tensor)`` the layers after the segment; returns the stitched output.

    Every process's share of a shared component is a partial sum of the segment's Dense
    product; this process adds the shares (exact mod t, bounds add up as in one process) and
    runs the rest of the network on the total, which is small (the segment's outputs).
    """
    end, blocks, chunks, shared, outputs = plan
    segment = layers[:end]
    shares = np.array_split(np.arange(len(blocks)), len(chunks))
    views = {j: P.parallel.component_view(x, [j]) for j in shared}
    wholes = [[P.parallel.component_view(x, chunk)] if chunk.size else [] for chunk in chunks]

    def job(i):
        def work():
            out = [run_whole(view) for view in wholes[i]]
            return out + [partial_sum(segment, views[j], [blocks[b] for b in shares[i]], outputs) for j in shared]
        return work
    contexts = [[view.context for view in wholes[i]] + [views[j].context for j in shared]
                for i in range(len(chunks))]
    results = P.parallel.run_jobs([job(i) for i in range(len(chunks))], contexts)
    computed = [out for r, views_i in zip(results, wholes) for out in r[:len(views_i)]]
    finished = []
    for position, j in enumerate(shared):
        parts = [r[len(views_i) + position] for r, views_i in zip(results, wholes)]
        total = parts[0]
        for part in parts[1:]:
            total = P.add(total, part)
        finished.append(run_tail(finish_segment(segment, views[j], total, outputs)))
    return P.parallel.stitch_components(computed + finished, x)


def run_sequential(layers, x, step, progress=None, block_features=None, computed=None, positions=None):
    """Run a Sequential model's ``layers`` on the encrypted ``x``, streaming what can be.

    ``step(layer, x)`` runs one layer (and reports progress); ``progress(layer, output)``, if
    given, is told of each layer computed otherwise: the layers of a streamed segment once the
    segment is done (``output``: the segment's output for its last layer, None for the others)
    and pruned layers (their compact output). ``computed`` (per
    layer, :func:`heras.models.pruning.computed_features`) and ``positions`` (the features ``x``
    holds, None for all) leave pruned features out; then numpy inputs run pruned too.
    """
    block_features = block_features_setting() if block_features is None else block_features
    stream = block_features > 0 and P.is_encrypted(x) and x.scheme == "bfv"
    computed = [None] * len(layers) if computed is None else list(computed)
    index = 0
    while index < len(layers):
        end = find_segment(layers, index) if (stream or computed[index] is not None or positions is not None) else None
        out = None
        if end and positions is None and all(c is None for c in computed[index:end]):
            out = run_segment(layers[index:end], x, block_features)   # unpruned: streamed or not at all
        elif end:
            out = run_segment(layers[index:end], x, block_features if stream else 0, computed[index:end], positions)
        if out is None:
            layer = layers[index]
            if positions is None and computed[index] is None:
                x = step(layer, x)
            else:
                x = (layer.call_subset(x, positions, computed[index]) if isinstance(layer, LinearWithActivation)
                     else _call_compact(layer, x))
                P.progress.report("step", layer.name)
                if progress is not None:
                    progress(layer, x)
            positions = computed[index]
            index += 1
            continue
        x, positions = out, computed[end - 1]
        for layer in layers[index:end]:
            if progress is not None:
                progress(layer, out if layer is layers[end - 1] else None)
        index = end
    return x


def count_steps(layers, input_shape, stream, block_features=None, computed=None, positions=None):
    """Progress steps of :func:`run_sequential` on one CRT component of inputs of per-sample
    ``input_shape``: one per layer run whole, one per block of a streamed (or pruned) segment.

    ``stream``: whether the input streams (an encrypted BFV tensor), as ``run_sequential`` decides;
    ``computed``, ``positions``: the pruning, as given to ``run_sequential``.
    """
    block_features = block_features_setting() if block_features is None else block_features
    computed = [None] * len(layers) if computed is None else list(computed)
    streams = stream and block_features > 0
    shape, steps, index = tuple(input_shape), 0, 0
    while index < len(layers):
        pruned = computed[index] is not None or positions is not None
        end = find_segment(layers, index) if (streams or pruned) else None
        blocks = 0
        if end and positions is None and all(c is None for c in computed[index:end]):
            found = _blocks_for_input(layers[index:end], shape, block_features)
            blocks = len(found) if found else 0
        elif end:
            first = layers[index]
            kept = computed[index].size if computed[index] is not None else \
                math.prod(first.compute_output_shape((None,) + tuple(first.input.shape[1:]))[1:])
            blocks = math.ceil(kept / block_features) if streams else 1
        run = layers[index:end] if blocks else layers[index:index + 1]
        steps += blocks if blocks else 1
        for layer in run:
            shape = tuple(layer.compute_output_shape((None,) + shape)[1:])
        positions = computed[index + len(run) - 1]
        index += len(run)
    return steps
