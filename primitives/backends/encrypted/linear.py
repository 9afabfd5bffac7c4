"""Encrypted linear maps: dense, convolution, pooling and sums with plaintext weights.

Every such layer is a :class:`~primitives.linear_maps.LinearMap` applied to batch-in-slots
ciphertexts: output k = sum_j w_kj * ct_j + b_k, one ciphertext per output feature.
BFV multiplies by |w| and subtracts negative terms (SEAL would charge log2(t) noise bits for
a negative constant); CKKS encodes weights at the scale of the prime it then rescales away,
so every output keeps the input's scale exactly.
"""

import math

import numpy as np

from ... import crt
from ...encrypted_tensor import EncryptedTensor
from ...errors import ShapeError
from ...noise import linear_cost_bits
from . import guards, seal_ops
from .arithmetic import lower_level


class _Accumulator:
    """Sum of ciphertexts that adds in place once it owns its ciphertext."""

    def __init__(self, component):
        self.component, self.value, self.owned = component, None, False

    def add(self, ct, owned):
        if self.value is None:
            self.value, self.owned = ct, owned
        elif self.owned:
            self.component.evaluator.add_inplace(*seal_ops.align(self.component, self.value, ct))
        else:
            self.value, self.owned = seal_ops.add(self.component, self.value, ct), True


def apply_linear_map(x, linear_map, op="linear"):
    """Return the encrypted tensor ``linear_map(x)``; see the module docstring."""
    if tuple(linear_map.in_shape) != x.shape:
        raise ShapeError(f"{op}: expected encrypted inputs of feature shape {linear_map.in_shape}. "
                         f"Received {x.shape}.")
    bfv = x.scheme == "bfv"
    weights = crt.as_integer_array(linear_map.weights) if bfv else linear_map.weights.astype(np.float64)
    bias = None
    if linear_map.bias is not None:
        bias = crt.as_integer_array(linear_map.bias) if bfv else linear_map.bias.astype(np.float64)
    bound = _output_bound(x, linear_map, weights, bias)
    guards.check_bfv(x, bound, op)
    rescale = not bfv and bool(np.any(np.abs(weights) != 1))
    if rescale:
        guards.check_levels(x, 1, op)
    noise = x.noise_used_bits
    if bfv and weights.size:
        noise = noise + linear_cost_bits(int(guards.max_abs(linear_map.row_abs_sums())))
        guards.check_noise(x, noise, op)
    source = _common_level(x) if not bfv else x.data
    out_size = linear_map.out_size
    components = x.context.components
    data = np.empty((len(components), x.groups, out_size), dtype=object)
    for c, component in enumerate(components):
        row_fn = _bfv_row if bfv else _ckks_row
        for g in range(x.groups):
            cts = source[c, g]
            for k in range(out_size):
                start, stop = linear_map.indptr[k], linear_map.indptr[k + 1]
                b = 0 if bias is None else bias[k]
                data[c, g, k] = row_fn(component, cts, linear_map.indices[start:stop],
                                       weights[start:stop], b, rescale)
    result = EncryptedTensor(x.context, data, linear_map.out_shape, x.batch_size, bound, noise, x.depth_used)
    guards.check_ckks_capacity(result)
    return result


def _output_bound(x, linear_map, weights, bias):
    """|W| . bound + |b| per output: exact integers for BFV, floats for CKKS."""
    if x.scheme == "bfv":
        terms = np.abs(weights.astype(object)) * x.bound[linear_map.indices]
        bound = np.zeros(linear_map.out_size, dtype=object)
    else:
        terms = np.abs(weights) * x.bound[linear_map.indices].astype(np.float64)
        bound = np.zeros(linear_map.out_size, dtype=np.float64)
    rows = np.repeat(np.arange(linear_map.out_size), np.diff(linear_map.indptr))
    np.add.at(bound, rows, terms)
    if bias is not None:
        bound = bound + np.abs(bias.astype(object) if x.scheme == "bfv" else bias)
    return bound


def _bfv_row(component, cts, indices, weights, bias, rescale):
    t = component.plain_modulus
    positive, negative = _Accumulator(component), _Accumulator(component)
    for j, w in zip(indices.tolist(), weights.tolist()):
        residue = abs(w) % t
        if residue == 0:
            continue
        term, owned = cts[j], False
        if residue != 1:
            term, owned = seal_ops.multiply_plain(component, term, seal_ops.bfv_constant(component, residue)), True
        (positive if w > 0 else negative).add(term, owned)
    if positive.value is None and negative.value is None:
        out = seal_ops.zero(component, cts[0])
    elif negative.value is None:
        out = positive.value  # may be an input ciphertext: shared, never modified
    elif positive.value is None:
        out = seal_ops.negate(component, negative.value)
    else:
        out = seal_ops.sub(component, positive.value, negative.value)
    residue = int(bias) % t
    if residue:
        out = seal_ops.add_plain(component, out, seal_ops.bfv_constant(component, residue))
    return out


def _ckks_row(component, cts, indices, weights, bias, rescale):
    like = cts[0]
    prime = component.level_prime(like) if rescale else 1.0
    total = _Accumulator(component)
    for j, w in zip(indices.tolist(), weights.tolist()):
        if not rescale:
            term = cts[j] if w == 1 else seal_ops.negate(component, cts[j])
            total.add(term, w != 1)
        elif abs(w) * prime >= 0.5:
            plain = seal_ops.ckks_plain(component, float(w), cts[j], prime)
            total.add(seal_ops.multiply_plain(component, cts[j], plain), True)
    if total.value is None:
        out = seal_ops.zero(component, like)
        out.scale = like.scale * prime
    else:
        out = total.value  # owned whenever rescale is set (products); else possibly shared
    if bias:
        out = seal_ops.add_plain(component, out, seal_ops.ckks_plain(component, float(bias), out, out.scale))
    return seal_ops.rescale(component, out) if rescale else out


def _common_level(x):
    """CKKS: the tensor's ciphertexts, all switched to the lowest level among them."""
    return lower_level(x, x.levels_left).data
