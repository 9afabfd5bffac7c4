"""Element-wise encrypted ops: add, subtract, negate, multiply, square.

Each op first proves its result is safe (BFV: the propagated bound stays below T/2 and the
estimated noise budget stays positive; CKKS: a level is left for each rescaling), then
computes feature by feature on every CRT component and ciphertext group.
"""

import math

import numpy as np

from ... import crt
from ...encrypted_tensor import EncryptedTensor
from ...errors import ShapeError
from ...noise import add_cost_bits, multiply_cost_bits
from . import guards, seal_ops


# ----------------------------------------------------------------- operand handling
def broadcast_indices(shape, out_shape):
    """Flat feature indices of a tensor of ``shape`` broadcast to ``out_shape``."""
    return np.broadcast_to(np.arange(math.prod(shape)).reshape(shape), out_shape).ravel()


def broadcast_feature_shapes(a, b, op):
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise ShapeError(f"{op}: feature shapes {tuple(a)} and {tuple(b)} do not broadcast. "
                         "Reshape one operand so trailing dimensions match or are 1.") from None


def plain_operand(x, value, op):
    """Classify a plain operand of encrypted ``x``.

    Returns ``(kind, out_shape, values)``: kind "constant" gives one value per output feature
    (the same for every sample: a constant plaintext), kind "slots" gives a (batch, features)
    array (a different value per sample).
    """
    values = np.asarray(value)
    values = crt.as_integer_array(values) if x.scheme == "bfv" else values.astype(np.float64)
    if values.ndim == len(x.shape) + 1:
        if values.shape[0] == 1:
            values = values[0]
        elif values.shape[0] == x.batch_size:
            out_shape = broadcast_feature_shapes(x.shape, values.shape[1:], op)
            slots = np.broadcast_to(values, (x.batch_size,) + out_shape).reshape(x.batch_size, -1)
            return "slots", out_shape, slots
        else:
            raise ShapeError(f"{op}: a plain operand with a batch axis must have batch size 1 or "
                             f"{x.batch_size}. Received shape {values.shape}.")
    elif values.ndim > len(x.shape) + 1:
        raise ShapeError(f"{op}: plain operand of shape {values.shape} has more axes than the "
                         f"encrypted tensor (batch, {', '.join(map(str, x.shape))}).")
    out_shape = broadcast_feature_shapes(x.shape, values.shape, op)
    return "constant", out_shape, np.broadcast_to(values, out_shape).ravel()


def plain_bound(kind, values, scheme):
    """Per-feature bound on |plain operand|."""
    if kind == "slots":
        values = np.abs(values.astype(object) if scheme == "bfv" else values).max(axis=0)
    return np.abs(values.astype(object) if scheme == "bfv" else values)


def build(x, out_shape, per_ciphertext, bound, noise_used_bits, depth_used):
    """Assemble a new tensor calling ``per_ciphertext(c, component, g, f)`` for every slot."""
    out_size = math.prod(out_shape)
    components = x.context.components
    data = np.empty((len(components), x.groups, out_size), dtype=object)
    for c, component in enumerate(components):
        for g in range(x.groups):
            for f in range(out_size):
                data[c, g, f] = per_ciphertext(c, component, g, f)
    result = EncryptedTensor(x.context, data, out_shape, x.batch_size, bound, noise_used_bits, depth_used)
    guards.check_ckks_capacity(result)
    return result


def group_slots(x, values, g, f):
    slots = x.context.slot_count
    return values[g * slots:(g + 1) * slots, f]


def encode_slots(component, x, values, g, f, like=None, scale=None):
    column = group_slots(x, values, g, f)
    if seal_ops.is_bfv(component):
        return seal_ops.bfv_slots(component, crt.residues(column, component.plain_modulus).tolist())
    padded = list(column.astype(float)) + [0.0] * (x.context.slot_count - len(column))
    return seal_ops.ckks_plain(component, padded, like, scale)


# ----------------------------------------------------------------- ops
def add(x, y):
    return _add_or_subtract(x, y, subtract=False)


def subtract(x, y):
    return _add_or_subtract(x, y, subtract=True)


def _add_or_subtract(x, y, subtract):
    op = "subtract" if subtract else "add"
    if isinstance(y, EncryptedTensor):
        x.check_same_keys(y)
        if x.scheme == "ckks":
            x, y = match_scales(x, y)
        out_shape = broadcast_feature_shapes(x.shape, y.shape, op)
        xi, yi = broadcast_indices(x.shape, out_shape), broadcast_indices(y.shape, out_shape)
        bound = x.bound[xi] + y.bound[yi]
        guards.check_bfv(x, bound, op)
        combine = seal_ops.sub if subtract else seal_ops.add
        noise = np.maximum(x.noise_used_bits, y.noise_used_bits) + add_cost_bits()
        guards.check_noise(x, noise, op)
        return build(x, out_shape, lambda c, comp, g, f: combine(comp, x.data[c, g, xi[f]], y.data[c, g, yi[f]]),
                     bound, noise, max(x.depth_used, y.depth_used))
    kind, out_shape, values = plain_operand(x, y, op)
    values = -values if subtract else values
    xi = broadcast_indices(x.shape, out_shape)
    bound = x.bound[xi] + plain_bound(kind, values, x.scheme)
    guards.check_bfv(x, bound, op)

    def per_ciphertext(c, comp, g, f):
        ct = x.data[c, g, xi[f]]
        if kind == "slots":
            return seal_ops.add_plain(comp, ct, encode_slots(comp, x, values, g, f, ct, ct.scale))
        if values[f] == 0:
            return ct
        if seal_ops.is_bfv(comp):
            return seal_ops.add_plain(comp, ct, seal_ops.bfv_constant(comp, int(values[f]) % comp.plain_modulus))
        return seal_ops.add_plain(comp, ct, seal_ops.ckks_plain(comp, float(values[f]), ct, ct.scale))

    return build(x, out_shape, per_ciphertext, bound, x.noise_used_bits, x.depth_used)


def negate(x):
    return build(x, x.shape, lambda c, comp, g, f: seal_ops.negate(comp, x.data[c, g, f]),
                 x.bound.copy(), x.noise_used_bits, x.depth_used)


def multiply(x, y):
    if isinstance(y, EncryptedTensor):
        return _multiply_encrypted(x, y, "multiply")
    return _multiply_plain(x, y)


def square(x):
    return _multiply_encrypted(x, x, "square")


def _multiply_encrypted(x, y, op):
    x.check_same_keys(y)
    out_shape = broadcast_feature_shapes(x.shape, y.shape, op)
    xi, yi = broadcast_indices(x.shape, out_shape), broadcast_indices(y.shape, out_shape)
    bound = x.bound[xi] * y.bound[yi]
    guards.check_bfv(x, bound, op)
    guards.check_levels(x, 1, op)
    guards.check_levels(y, 1, op)
    params = x.context.parameters
    noise = np.maximum(x.noise_used_bits, y.noise_used_bits) + np.array(
        [multiply_cost_bits(params.poly_modulus_degree, t) for t in params.plain_moduli] or [0.0])
    guards.check_noise(x, noise, op)

    defer = x.scheme == "bfv"  # BFV: relinearise when the next product needs it (see seal_ops.multiply)

    def per_ciphertext(c, comp, g, f):
        a, b = x.data[c, g, xi[f]], y.data[c, g, yi[f]]
        return seal_ops.multiply(comp, a, a if (x is y and xi[f] == yi[f]) else b, relinearize=not defer)

    return build(x, out_shape, per_ciphertext, bound, noise, max(x.depth_used, y.depth_used) + 1)


def _multiply_plain(x, y, target_scale=None):
    """Multiply by a plain operand; CKKS encodes it so the result has ``target_scale``
    (default: the input's scale, by encoding at the prime the rescaling removes)."""
    op = "multiply"
    kind, out_shape, values = plain_operand(x, y, op)
    xi = broadcast_indices(x.shape, out_shape)
    bound = x.bound[xi] * plain_bound(kind, values, x.scheme)
    guards.check_bfv(x, bound, op)
    bfv = x.scheme == "bfv"
    if not bfv:
        guards.check_levels(x, 1, op)
    params = x.context.parameters
    if kind == "slots":  # a full plaintext polynomial: noise grows like a ciphertext product
        growth = [multiply_cost_bits(params.poly_modulus_degree, t) for t in params.plain_moduli] or [0.0]
    else:
        growth = [math.log2(max(1, min(int(guards.max_abs(values)), t))) for t in params.plain_moduli] or [0.0]
    noise = x.noise_used_bits + np.array(growth)
    guards.check_noise(x, noise, op)

    def per_ciphertext(c, comp, g, f):
        ct = x.data[c, g, xi[f]]
        if not seal_ops.is_bfv(comp):
            prime = comp.level_prime(ct)
            scale = prime if target_scale is None else target_scale * prime / ct.scale
            if _ckks_is_zero(kind, values, f, scale, x, g):
                out = seal_ops.zero(comp, ct)
                comp.evaluator.mod_switch_to_next_inplace(out)
                out.scale = ct.scale if target_scale is None else target_scale
                return out
            plain = (encode_slots(comp, x, values, g, f, ct, scale) if kind == "slots"
                     else seal_ops.ckks_plain(comp, float(values[f]), ct, scale))
            return seal_ops.rescale(comp, seal_ops.multiply_plain(comp, ct, plain))
        if kind == "slots":
            column = group_slots(x, values, g, f)
            if not np.any(column):
                return seal_ops.zero(comp, ct)
            return seal_ops.multiply_plain(comp, ct, encode_slots(comp, x, values, g, f))
        return _bfv_times_constant(comp, ct, int(values[f]))

    return build(x, out_shape, per_ciphertext, bound, noise, x.depth_used)


def _ckks_is_zero(kind, values, f, scale, x, g):
    """True when the plain factor encodes to all zeros (SEAL would refuse the transparent result)."""
    column = group_slots(x, values, g, f) if kind == "slots" else np.array([values[f]])
    return not np.any(np.abs(column) * scale >= 0.5)


def polynomial(x, coefficients):
    """sum_k c_k x^k with powers built by squaring (depth ceil(log2 degree)).

    CKKS: every non-zero term is brought to the deepest power's level and multiplied by its
    coefficient encoded so that all terms land on exactly the same scale (one more level).
    """
    powers = {1: x}

    def power(k):
        if k not in powers:
            powers[k] = square(power(k // 2)) if k % 2 == 0 else multiply(power(k - 1), x)
        return powers[k]

    terms = [(k, c) for k, c in enumerate(coefficients) if k > 0 and c != 0]
    if not terms:
        return add(_multiply_plain(x, 0), coefficients[0])
    for k, _ in terms:
        power(k)
    if x.scheme == "bfv":
        parts = [powers[k] if c == 1 else _multiply_plain(powers[k], c) for k, c in terms]
    else:
        level = min(powers[k].levels_left for k, _ in terms)
        deepest = next(powers[k] for k, _ in terms if powers[k].levels_left == level)
        target = deepest.data.ravel()[0].scale
        parts = [_multiply_plain(lower_level(powers[k], level), c, target) for k, c in terms]
    result = parts[0]
    for part in parts[1:]:
        result = add(result, part)
    return result if coefficients[0] == 0 else add(result, coefficients[0])


def match_scales(x, y):
    """CKKS: put two tensors on one scale before adding them (e.g. a residual x + x^2).

    Scales that differ beyond seal_ops' tolerance are matched by multiplying the operand with
    levels to spare (or, at equal levels, y) by 1.0, encoded so that it lands exactly on the
    other's scale; this uses one level of that operand.
    """
    scale_x, scale_y = x.data.ravel()[0].scale, y.data.ravel()[0].scale
    if abs(scale_x - scale_y) <= seal_ops.SCALE_TOLERANCE * max(scale_x, scale_y):
        return x, y
    levels_x, levels_y = x.levels_left, y.levels_left
    if levels_x > levels_y:
        return _multiply_plain(lower_level(x, levels_y + 1), 1.0, target_scale=scale_y), y
    if levels_y > levels_x or levels_y > 0:  # same level: y spends one, seal_ops.align lowers x
        return x, _multiply_plain(lower_level(y, min(levels_x + 1, levels_y)), 1.0, target_scale=scale_x)
    return x, y  # no level left to match them: seal_ops.align explains the refusal


def lower_level(x, level):
    """CKKS: the same values with every ciphertext switched down to ``level``."""
    component = x.context.components[0]
    if all(component.chain_index(ct) == level for ct in x.data.ravel()):
        return x
    template = next(ct for ct in x.data.ravel() if component.chain_index(ct) >= level)
    while component.chain_index(template) > level:
        template = seal_ops.switch_next(component, template)
    data = np.empty(x.data.shape, dtype=object)
    for index, ct in np.ndenumerate(x.data):
        data[index] = seal_ops.switch_to(component, ct, template)
    return EncryptedTensor(x.context, data, x.shape, x.batch_size, x.bound, x.noise_used_bits, x.depth_used)


def _bfv_times_constant(comp, ct, value):
    """Multiply by a signed integer with noise growth |value| (SEAL would charge t for negatives)."""
    residue = abs(value) % comp.plain_modulus
    if residue == 0:
        return seal_ops.zero(comp, ct)
    product = ct if residue == 1 else seal_ops.multiply_plain(comp, ct, seal_ops.bfv_constant(comp, residue))
    return seal_ops.negate(comp, product) if value < 0 else product
