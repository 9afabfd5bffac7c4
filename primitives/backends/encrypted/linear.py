"""Encrypted linear maps: dense, convolution, pooling and sums with plaintext weights.

Every such layer is a :class:`~primitives.linear_maps.LinearMap` applied to batch-in-slots
ciphertexts: output k = sum_j w_kj * ct_j + b_k, one ciphertext per output feature.
BFV multiplies by |w| and subtracts negative terms (SEAL would charge log2(t) noise bits for
a negative constant); CKKS encodes weights at the scale of the prime it then rescales away,
so every output keeps the input's scale exactly.

Two kernels compute the same ciphertexts, bit for bit:

* ``seal``: per output, one SEAL ``multiply_plain`` and ``add`` per tap (the reference).
* ``coefficients``: the whole layer as exact integer matrix products on the ciphertexts' raw
  coefficients through BLAS (:mod:`.coefficient_linear`); bias, zero rows and CKKS rescaling
  stay in SEAL. BFV weights become sign(w) * (|w| mod t), CKKS weights round(w * p) (what
  SEAL's encoder puts in every NTT slot of a constant), so the noise is the same as SEAL's.

``auto`` (the default) uses the coefficient kernel when taps >= :data:`CROSSOVER` * (inputs +
outputs), a tap of weight +-1 counting :data:`UNIT_TAP_COST` (SEAL only adds it, no product):
the coefficient kernel's cost is mostly converting each input and reducing each output, about
1.1 SEAL products each (measured at n=8192, benchmarks/linear_kernel.py), so sparse maps
(sums, poolings) stay in SEAL. :data:`KERNEL`, else ``$SEALION_LINEAR_KERNEL``, picks ``auto``, ``seal`` or
``coefficients``; the coefficient kernel falls back to SEAL's loop for inputs it cannot take
(mixed CKKS scales, weights of 2^62 and more, no working coefficient route).
"""

import math
import os

import numpy as np

from ... import crt
from ...encrypted_tensor import EncryptedTensor
from ...errors import ShapeError
from ...noise import linear_cost_bits
from . import coefficient_linear, guards, seal_ops
from .arithmetic import lower_level

KERNELS = ("auto", "seal", "coefficients")
KERNEL = None  # None: $SEALION_LINEAR_KERNEL, default "auto"
ENVIRONMENT_VARIABLE = "SEALION_LINEAR_KERNEL"
CROSSOVER = 1.5       # auto: coefficients when taps >= CROSSOVER * (inputs + outputs) ...
UNIT_TAP_COST = 0.5   # ... counting taps of weight +-1 (a SEAL add, no product) as half a tap
last_kernels = []  # kernel used per (component, group) by the latest call (for tests and benchmarks)


def kernel_setting():
    """The configured kernel: :data:`KERNEL`, else $SEALION_LINEAR_KERNEL, else "auto"."""
    kernel = KERNEL if KERNEL is not None else os.environ.get(ENVIRONMENT_VARIABLE, "auto")
    if kernel not in KERNELS:
        raise ValueError(f"Expected the linear kernel to be one of {list(KERNELS)}. Received: {kernel!r} "
                         f"(from {'KERNEL' if KERNEL is not None else ENVIRONMENT_VARIABLE}).")
    return kernel


def use_coefficients(linear_map, kernel=None, products=False):
    """Whether ``linear_map`` runs on the coefficient kernel under ``kernel`` (default: the setting).

    Args:
        products: SEAL multiplies every tap, even of weight +-1 (CKKS layers that rescale).
    """
    kernel = kernel or kernel_setting()
    if kernel != "auto":
        return kernel == "coefficients"
    inputs = int(np.prod(linear_map.in_shape, dtype=np.int64))
    taps = linear_map.indices.size
    if not products:
        weights = linear_map.weights
        unit = int(np.count_nonzero((weights == 1) | (weights == -1)))
        taps = taps - unit + UNIT_TAP_COST * unit
    return taps >= CROSSOVER * (inputs + linear_map.out_size)


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
    fast = use_coefficients(linear_map, products=rescale)
    last_kernels.clear()
    for c, component in enumerate(components):
        row_fn = _bfv_row if bfv else _ckks_row
        integers = _integer_weights(component, source[c, 0][0], weights, rescale, bfv) if fast else None
        for g in range(x.groups):
            cts = source[c, g]
            if integers is not None:
                outputs = _coefficient_rows(component, cts, linear_map, integers, bias, rescale, bfv)
                if outputs is not None:
                    data[c, g, :] = outputs
                    last_kernels.append("coefficients")
                    continue
            last_kernels.append("seal")
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


def _integer_weights(component, like, weights, rescale, bfv):
    """The integers SEAL multiplies by, per tap: BFV sign(w) * (|w| mod t), CKKS round(w * p)
    (or +-1 without rescaling); None if the coefficient kernel cannot take them."""
    if bfv:
        t = component.plain_modulus
        if weights.dtype.kind in "iu":
            return np.sign(weights) * (np.abs(weights) % t)
        return np.array([(abs(w) % t) * (1 if w > 0 else -1) for w in weights.tolist()], dtype=object)
    if not rescale:
        return np.where(weights == 1, 1, -1).astype(np.int64)
    return _ckks_integers(weights, component.level_prime(like))


def _coefficient_rows(component, cts, linear_map, integers, bias, rescale, bfv):
    """All outputs of one component and group through :mod:`.coefficient_linear`; None if it
    cannot take them (the caller then runs SEAL's loop)."""
    like = cts[0]
    scale = like.scale * component.level_prime(like) if rescale else like.scale
    try:
        sums = coefficient_linear.combine(component, list(cts), linear_map.indptr, linear_map.indices,
                                          integers, scale=scale)
    except coefficient_linear.Unsupported:
        return None
    for k, out in enumerate(sums):  # every ciphertext here is ours: bias and rescale in place
        if out is None:  # no non-zero weight: a fresh encryption of zero, as SEAL's loop makes
            out = seal_ops.zero(component, like)
            out.scale = scale
        b = 0 if bias is None else bias[k]
        sums[k] = (_bfv_finish(component, out, b, owned=True) if bfv
                   else _ckks_finish(component, out, b, rescale, owned=True))
    return sums


def _ckks_integers(weights, prime):
    """round(w * p) as SEAL's CKKSEncoder computes it for a constant (C round: half away from
    zero); None if some |w * p| reaches 2^62 or is not finite."""
    scaled = weights * float(prime)
    magnitude = np.abs(scaled)
    if magnitude.size and not np.all(magnitude < 2.0 ** coefficient_linear.MAX_WEIGHT_BITS):
        return None
    whole = np.floor(magnitude)
    rounded = whole + (magnitude - whole >= 0.5)
    return np.copysign(rounded, scaled).astype(np.int64)


def _bfv_finish(component, out, bias, owned=False):
    """Add the bias (in place when ``out`` is ours, else into a new ciphertext)."""
    residue = int(bias) % component.plain_modulus
    if residue:
        plain = seal_ops.bfv_constant(component, residue)
        if owned:
            component.evaluator.add_plain_inplace(out, plain)
        else:
            out = seal_ops.add_plain(component, out, plain)
    return out


def _ckks_finish(component, out, bias, rescale, owned=False):
    """Add the bias (in place when ``out`` is ours) and rescale (``out`` is then always ours)."""
    if bias:
        plain = seal_ops.ckks_plain(component, float(bias), out, out.scale)
        if owned:
            component.evaluator.add_plain_inplace(out, plain)
        else:
            out = seal_ops.add_plain(component, out, plain)
    return seal_ops.rescale(component, out) if rescale else out


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
    return _bfv_finish(component, out, bias)


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
    return _ckks_finish(component, out, bias, rescale)


def _common_level(x):
    """CKKS: the tensor's ciphertexts, all switched to the lowest level among them."""
    return lower_level(x, x.levels_left).data
