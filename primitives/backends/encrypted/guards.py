"""Checks that run before (or right after) an encrypted op so it never returns garbage.

BFV: a result whose bound could reach T/2 would wrap around the plaintext modulus, and one whose
noise exceeds the budget would decrypt to noise; both are refused. CKKS: a rescaling needs a
level left, and a value whose scaled magnitude nears the remaining modulus would wrap.
"""

import math

import numpy as np

from ... import crt
from ...errors import DepthExhaustedError, OverflowRiskError


def max_abs(values):
    """Largest |value| of an array (Python int for integer arrays)."""
    if values.dtype.kind == "f":
        return float(np.max(np.abs(values))) if values.size else 0.0
    return crt.max_abs(values)


def check_bfv(x, bound, op):
    """Refuse a BFV result whose proven bound reaches the CRT product's half range."""
    if x.scheme != "bfv" or bound.size == 0:
        return
    limit = x.context.parameters.max_exact_value
    worst = max_abs(bound)
    if worst > limit:
        raise OverflowRiskError(
            f"{op}: the result could reach |value| = {worst} (~2^{math.log2(worst):.1f}), but these "
            f"BFV parameters are exact only up to {limit} (~2^{math.log2(limit):.1f}); the value "
            "would wrap around silently. Select parameters with a larger max_value "
            f"(select_parameters(..., max_value={worst})), or scale inputs or weights down.")


def check_noise(x, noise_used_bits, op):
    """Refuse a BFV op whose estimated noise would exhaust the budget of any CRT component."""
    if x.scheme != "bfv":
        return
    left = x.estimated_budget_bits(noise_used_bits)
    if left < 0:
        params = x.context.parameters
        raise DepthExhaustedError(
            f"{op}: the estimated noise budget would fall to {left:.1f} bits, so decryption would "
            f"return garbage. These parameters (n={params.poly_modulus_degree}, depth "
            f"{params.depth}) are too small for this computation; select parameters with a larger "
            "depth or linear_bits.")


def check_levels(x, needed, op):
    """Refuse a CKKS op that needs ``needed`` rescalings when fewer levels are left."""
    if x.scheme != "ckks":
        return
    left = x.levels_left
    if left < needed:
        raise DepthExhaustedError(
            f"{op} needs {needed} more level(s), but this CKKS tensor has {left} left "
            f"(parameters chosen for depth {x.context.parameters.depth}). Select parameters with "
            "a larger depth: select_parameters('ckks', depth=...).")


def check_ckks_capacity(x):
    """Refuse a CKKS tensor whose bound times scale nears its remaining coefficient modulus."""
    if x.scheme != "ckks" or x.size == 0:
        return
    ct = x.data.ravel()[0]  # every ciphertext of a tensor shares level and (nearly) scale
    worst = max_abs(x.bound)
    data = x.context.components[0].seal_context.get_context_data(ct.parms_id())
    modulus_bits = data.total_coeff_modulus_bit_count()
    # |value| * scale must stay below q / 2, and q >= 2^(modulus_bits - 1)
    if worst > 0 and math.log2(worst) + math.log2(ct.scale) + 2 > modulus_bits:
        raise OverflowRiskError(
            f"CKKS values up to {worst:.4g} at scale 2^{math.log2(ct.scale):.1f} need more than "
            f"the {modulus_bits} bits of modulus left; they would wrap around. Select parameters "
            "with more integer_bits, or scale the inputs down.")
