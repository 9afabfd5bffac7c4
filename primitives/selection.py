"""Automatic parameter selection: the smallest secure ring (then the fewest CRT primes) that
holds a computation, predicted by the noise model and confirmed by a trial run.

BFV: for each ring degree n from 4096 up, the coefficient modulus is the largest the security
table allows (SEAL's ``BFVDefault`` bits in the fewest primes); the plaintext modulus is k batching primes with
product T > 2 * max_value, k as small as the noise budget permits (fewer primes = fewer SEAL
contexts = faster). CKKS: scale 2^s with s = precision_bits + amplification_bits (how much the
computation can amplify one op's error; heras computes it per network) + guard bits (14, more
if the trial needs them), a base of s + integer_bits + 2 bits (exactly what the encrypted
backend's capacity guard needs for |value| < 2^integer_bits: one prime, or several when that
exceeds SEAL's 60-bit cap), one s-bit prime per level and a special prime; the smallest n
whose table entry holds the chain.

CKKS error model: every op that creates noise (a fresh encryption, with the public key in the
worst case; a rescaling with its relinearisation) adds at most 2^-(precision + amplification)
= 2^-(s - guard) to a value; the trial measures each of them on real ciphertexts and requires
half of that (one bit of margin for other keys and data). A caller that bounds how much its
computation amplifies those per-op errors by A <= 2^amplification_bits thus gets an output
error of at most A * 2^-(precision + amplification) <= 2^-precision.
"""

import math
import numbers

import numpy as np
from tenseal import sealapi

from . import noise
from .errors import ParameterError
from .parameters import MAX_PRIME_BITS, Parameters, check_scheme
from .security import RING_DEGREES, SOURCE, check_security_level, max_coeff_modulus_bits

MIN_RING = 4096          # smaller rings leave no room for a special (key-switching) prime
MAX_CRT_PRIMES = 16
DEFAULT_LINEAR_BITS = 20  # a 784-input layer with |w| <= 2^10
DEFAULT_NOISE_MARGIN_BITS = 10
DEFAULT_PRECISION_BITS = 20
DEFAULT_INTEGER_BITS = 10
CKKS_GUARD_BITS = 14     # scale bits lost to encoding and rescaling noise (more if the trial says so)
_SEC_LEVELS = {128: sealapi.SEC_LEVEL_TYPE.TC128, 192: sealapi.SEC_LEVEL_TYPE.TC192,
               256: sealapi.SEC_LEVEL_TYPE.TC256}


def select_parameters(scheme, *, security=128, depth, max_value=None, precision_bits=None,
                      integer_bits=None, batch_size=None, linear_bits=None, noise_margin_bits=None,
                      trial=True, amplification_bits=None):
    """Choose encryption parameters for a computation, with the reasons in ``notes``.

    Args:
        scheme: "bfv" (exact integers) or "ckks" (approximate reals).
        security: classical security in bits: 128, 192 or 256.
        depth: BFV: ciphertext-ciphertext multiplications on the longest path. CKKS: rescaling
            multiplications on the longest path (ciphertext products and plain products with
            non-unit weights each use one level).
        max_value: BFV: bound on |value| of every intermediate result (required).
        precision_bits: CKKS: bits after the binary point the result must keep (default 20).
        integer_bits: CKKS: log2 of the largest |value| (default 10).
        amplification_bits: CKKS: log2 of a bound A on how much the computation amplifies one
            op's error (the output error is at most A times the per-op error; heras'
            ``prepare_encryption`` proves it layer by layer). The scale gets these bits on top
            of precision and guard bits, and the trial then checks every op's own error
            against 2^-(precision_bits + amplification_bits + 1). Default: none; the trial
            checks ``depth`` squarings of values in [-1, 1] instead.
        batch_size: samples per run: recorded with the ciphertext groups it needs.
        linear_bits: BFV: log2 of the largest sum of |weights| feeding one output of a plain
            linear layer (default 20); one such layer is assumed before each multiplication and
            after the last.
        noise_margin_bits: BFV: noise budget that must remain at the end (default 10).
        trial: run the computation's worst case on real ciphertexts to confirm the choice
            (BFV: the noise budget; CKKS: the errors, see ``trial_ckks``).

    Returns:
        Parameters.

    Raises:
        ParameterError: for invalid arguments, or when no ring at ``security`` holds the
            computation (the message gives the bits needed and allowed).

    Example:
        >>> p = select_parameters("bfv", depth=1, max_value=2**40)
        >>> p.poly_modulus_degree, len(p.plain_moduli)
        (8192, 1)
    """
    scheme = check_scheme(scheme)
    security = check_security_level(security)
    depth = _non_negative_int(depth, "depth")
    if batch_size is not None:
        batch_size = _non_negative_int(batch_size, "batch_size", minimum=1)
    if scheme == "bfv":
        if precision_bits is not None or integer_bits is not None or amplification_bits is not None:
            raise ParameterError("`precision_bits`, `integer_bits` and `amplification_bits` describe "
                                 "CKKS values; BFV takes `max_value`.")
        return _select_bfv(security, depth, _max_value(max_value), batch_size,
                           _bits(linear_bits, DEFAULT_LINEAR_BITS, "linear_bits"),
                           _bits(noise_margin_bits, DEFAULT_NOISE_MARGIN_BITS, "noise_margin_bits"), trial)
    if max_value is not None or linear_bits is not None or noise_margin_bits is not None:
        raise ParameterError("`max_value`, `linear_bits` and `noise_margin_bits` are BFV settings; "
                             "CKKS takes `precision_bits` and `integer_bits`.")
    integer_bits = _bits(integer_bits, DEFAULT_INTEGER_BITS, "integer_bits")
    if integer_bits < 1:
        raise ParameterError("Expected `integer_bits` >= 1: CKKS's first prime must exceed the scale. "
                             f"Received: integer_bits={integer_bits!r}")
    if amplification_bits is not None:
        amplification_bits = _bits(amplification_bits, 0, "amplification_bits")
        if amplification_bits != int(amplification_bits):
            raise ParameterError("Expected `amplification_bits` to be a whole number of bits (round "
                                 f"log2 of the amplification up). Received: {amplification_bits!r}")
        amplification_bits = int(amplification_bits)
    return _select_ckks(security, depth, _bits(precision_bits, DEFAULT_PRECISION_BITS, "precision_bits"),
                        integer_bits, batch_size, trial, amplification_bits)


# ----------------------------------------------------------------- BFV
def bfv_coeff_mod_bit_sizes(n, security):
    """The largest coefficient modulus allowed, as prime bit sizes (special prime last).

    The bits of SEAL's ``BFVDefault`` modulus (the largest the security table allows), with
    its data bits regrouped into the fewest primes of at most 60 bits: the same noise budget
    (it depends on the bits, not the primes), but SEAL's multiplication and relinearisation
    cost grows with the number of primes, and so do the coefficient arrays the linear kernel
    processes. Measured at n=8192 (174 data bits): 3 primes of 58 bits square in 7.9 ms and
    relinearise in 2.6 ms, 4 primes of 43-44 bits in 10.2 ms and 3.8 ms, with the same
    budget left (145 bits fresh, 112 after a square). The special prime keeps SEAL's size.
    """
    default = [m.bit_count() for m in sealapi.CoeffModulus.BFVDefault(n, _SEC_LEVELS[security])]
    if len(default) == 1:  # no room for a special prime in SEAL's default: split it in two
        return (default[0] // 2, default[0] - default[0] // 2)
    data_bits, special = sum(default[:-1]), default[-1]
    count = -(-data_bits // MAX_PRIME_BITS)
    sizes = [data_bits // count + (1 if i >= count - data_bits % count else 0) for i in range(count)]
    return tuple(sizes) + (special,)


def predicted_bfv_budget(n, data_bits, t, depth, linear_bits):
    """Noise budget (bits) the model predicts after ``depth`` levels of linear layer + square."""
    return (noise.fresh_budget_bits(n, data_bits, t)
            - (depth + 1) * linear_bits
            - depth * (noise.multiply_cost_bits(n, t) + noise.add_cost_bits()))


def _select_bfv(security, depth, max_value, batch_size, linear_bits, margin, trial):
    needed_bits = math.log2(2 * max_value + 1)
    rejected = []
    for n in _rings():
        bits = bfv_coeff_mod_bit_sizes(n, security)
        data_bits = sum(bits[:-1])
        smallest_prime = smallest_prime_bits(n)
        for k in range(1, MAX_CRT_PRIMES + 1):
            moduli = _batching_primes(n, k, needed_bits, max_value, smallest_prime, bits)
            if moduli is None:
                continue
            budget = min(predicted_bfv_budget(n, data_bits, t, depth, linear_bits) for t in moduli)
            if budget < margin:
                continue
            notes = [
                f"security table: n={n} allows log q <= {max_coeff_modulus_bits(n, security)} bits "
                f"at {security}-bit security ({SOURCE}); using {list(bits)} = {sum(bits)} bits",
                f"plaintext: {k} CRT prime(s) {list(moduli)}, T = 2^{math.log2(math.prod(moduli)):.1f} "
                f"> 2 * max_value = 2^{needed_bits:.1f}",
                f"noise model: {budget:.1f} bits left after depth {depth} with linear layers of "
                f"l1-norm 2^{linear_bits:g} (margin {margin:g})",
            ] + rejected
            if batch_size:
                notes.append(_groups_note(batch_size, n))
            params = Parameters("bfv", n, bits, tuple(moduli), security=security, depth=depth,
                                max_value=max_value, linear_bits=linear_bits,
                                noise_margin_bits=margin, notes=tuple(notes))
            if not trial:
                return params
            measured = trial_bfv(params)
            if measured >= margin:
                return _with_note(params, f"trial run: {measured} bits of noise budget left "
                                          f"(predicted {budget:.1f}, required {margin:g})")
            rejected.append(f"n={n} with {k} prime(s) rejected: the trial left {measured} bits "
                            f"< margin {margin:g}")
            break
        else:
            reason, _ = _ring_shortfall(n, security, depth, linear_bits, margin, max_value)
            rejected.append(f"n={n} rejected: {reason}")
    raise ParameterError(_bfv_impossible(security, depth, max_value, linear_bits, margin, rejected))


def _bfv_impossible(security, depth, max_value, linear_bits, margin, rejected):
    """The reason no ring holds the computation: the largest ring's shortfall, with numbers."""
    n = RING_DEGREES[-1]
    shortfall, noise_bound = _ring_shortfall(n, security, depth, linear_bits, margin, max_value)
    fix = ("Reduce the depth, the weights (linear_bits) or the value range, or lower the security."
           if noise_bound else "Reduce the value range (scale inputs or weights down).")
    return (f"No BFV parameters at {security}-bit security hold depth {depth} with |values| up to "
            f"2^{math.log2(max_value):.1f} and linear layers of l1-norm 2^{linear_bits:g}: at the "
            f"largest ring, n = {n}, {shortfall}. {fix} Per ring: " + "; ".join(rejected))


def _ring_shortfall(n, security, depth, linear_bits, margin, max_value):
    """Say why ring ``n`` cannot hold the computation; return (reason, limited_by_noise)."""
    bits = bfv_coeff_mod_bit_sizes(n, security)
    data_bits, small = sum(bits[:-1]), smallest_prime_bits(n)
    fitting = [b for b in range(small, MAX_PRIME_BITS + 1)
               if predicted_bfv_budget(n, data_bits, 2.0 ** b, depth, linear_bits) >= margin]
    if not fitting:
        need = margin - predicted_bfv_budget(n, 0, 2.0 ** small, depth, linear_bits)
        return (f"even {small}-bit plaintext primes need a data modulus of {need:.0f} bits "
                f"for the noise (log q = {need + bits[-1]:.0f} with the special prime), but the table "
                f"allows log q = {max_coeff_modulus_bits(n, security)}", True)
    return (f"the noise allows plaintext primes of at most {max(fitting)} bits and "
            f"{MAX_CRT_PRIMES} of them give T < 2^{MAX_CRT_PRIMES * max(fitting)}, short of "
            f"2 * max_value = 2^{math.log2(2 * max_value + 1):.1f}", False)


def smallest_prime_bits(n):
    """Bits of the smallest plaintext prime the selection uses at ring degree ``n``."""
    return math.ceil(math.log2(2 * n)) + 2


def _batching_primes(n, k, needed_bits, max_value, smallest_prime, coeff_bits):
    """k distinct batching primes with product > 2 * max_value, as small as possible, or None.

    SEAL picks the largest primes = 1 mod 2n of a size for both moduli, so a plaintext prime
    can coincide with a coefficient prime (SEAL then rejects the context): those are skipped.
    """
    coefficient_primes = {m.value() for m in sealapi.CoeffModulus.Create(n, list(coeff_bits))}
    for size in range(max(smallest_prime, math.ceil(needed_bits / k)), MAX_PRIME_BITS + 1):
        for extra in range(len(coeff_bits) + 1):  # ask for one more prime per collision
            try:
                candidates = [m.value() for m in sealapi.PlainModulus.Batching(n, [size] * (k + extra))]
            except (ValueError, RuntimeError):
                break  # SEAL found too few primes of this size
            moduli = [t for t in candidates if t not in coefficient_primes]
            if len(moduli) >= k:
                if math.prod(moduli[:k]) > 2 * max_value:
                    return moduli[:k]
                break
    return None


def trial_bfv(params):
    """Run the worst case on real ciphertexts; return the smallest noise budget left (bits).

    Per CRT prime: random messages in every slot, encrypted with the public key (a server's
    encryption, 2-4 bits noisier than the client's secret-key one), then ``depth`` times a
    linear layer (plain multiplications whose factors multiply to 2^linear_bits), a square
    and an addition, then a final linear layer. The values may wrap mod t: uniformly random
    residues are the worst case for the noise, which is all the trial measures.
    """
    from .context import Context
    context = Context(params)
    rng = np.random.default_rng(0)
    budgets = []
    for component in context.components:
        t = component.plain_modulus
        plain, ct = sealapi.Plaintext(), sealapi.Ciphertext(component.seal_context)
        component.encoder.encode(rng.integers(0, t, params.slot_count).tolist(), plain)
        component.encryptor.encrypt(plain, ct)  # public key: the noisier encryption
        for level in range(params.depth + 1):
            ct = _trial_linear(component, ct, params.linear_bits, t)
            if level < params.depth:
                product = sealapi.Ciphertext(component.seal_context)
                component.evaluator.square(ct, product)
                component.evaluator.relinearize_inplace(product, component.relin_keys)
                component.evaluator.add_inplace(product, product)   # the model's add_cost
                ct = product
        budgets.append(component.decryptor.invariant_noise_budget(ct))
    return min(budgets)


def _trial_linear(component, ct, linear_bits, t):
    remaining = 2.0 ** linear_bits
    step_limit = 2 ** max(1, int(math.log2(t)) - 1)
    while remaining > 1:
        factor = min(math.ceil(remaining), step_limit)  # >= 2, so the loop ends
        out = sealapi.Ciphertext(component.seal_context)
        component.evaluator.multiply_plain(ct, sealapi.Plaintext(format(factor, "X")), out)
        ct, remaining = out, remaining / factor
    return ct


# ----------------------------------------------------------------- CKKS
def ckks_chain(depth, precision_bits, integer_bits, guard_bits, amplification_bits=0):
    """Return (scale_bits, coefficient prime bit sizes, base primes) for a CKKS computation.

    The base (the primes left after the last rescaling) holds scale + integer_bits + 2 bits:
    one prime, or the fewest equal primes when that exceeds SEAL's 60-bit cap. The special
    prime is as large as the largest data prime.
    """
    scale_bits = max(20, precision_bits + amplification_bits + guard_bits)
    base = scale_bits + integer_bits + 2  # |value| * scale < q0 / 2, and q0 >= 2^(bits - 1)
    if scale_bits > MAX_PRIME_BITS:
        parts = f"{precision_bits} bits of precision + {guard_bits} guard bits"
        if amplification_bits:
            parts = (f"{precision_bits} bits of precision + {amplification_bits} amplification bits "
                     f"+ {guard_bits} guard bits")
        raise ParameterError(
            f"CKKS with {precision_bits} bits of precision needs a scale of 2^{scale_bits} ({parts}): "
            f"each level is one prime of that size, and SEAL caps primes at {MAX_PRIME_BITS} bits. "
            "Lower precision_bits" + (" or the network's amplification (smaller weights or values)."
                                      if amplification_bits else "."))
    count = math.ceil(base / MAX_PRIME_BITS)
    base_bits = (math.ceil(base / count),) * count
    special = max(base_bits[0], scale_bits)
    return scale_bits, base_bits + (scale_bits,) * depth + (special,), count


def _select_ckks(security, depth, precision_bits, integer_bits, batch_size, trial, amplification_bits=None):
    """Try guard bits from CKKS_GUARD_BITS up, in steps of 2, until the trial meets the precision."""
    failures = []
    amplification = amplification_bits or 0
    target = precision_bits + amplification  # per-op errors (or the chain) must stay within 2^-(target+1)
    ckks_chain(depth, precision_bits, integer_bits, CKKS_GUARD_BITS, amplification)  # raises if impossible
    for guard_bits in range(CKKS_GUARD_BITS, CKKS_GUARD_BITS + 12, 2):
        if target + guard_bits > MAX_PRIME_BITS:
            parts = f"precision {precision_bits} + " + (f"amplification {amplification} + " if amplification else "")
            stop = (f"scale 2^{target + guard_bits} = {parts}guard {guard_bits} bits would exceed SEAL's "
                    f"{MAX_PRIME_BITS}-bit primes. Lower precision_bits (to {MAX_PRIME_BITS - guard_bits - amplification} "
                    "or less)" + (", or the amplification (smaller weights or input range)." if amplification else "."))
            break
        scale_bits, bits, base_primes = ckks_chain(depth, precision_bits, integer_bits, guard_bits, amplification)
        total = sum(bits)
        n = next((n for n in _rings() if total <= max_coeff_modulus_bits(n, security)), None)
        if n is None:
            largest = RING_DEGREES[-1]
            stop = (f"depth {depth} with {precision_bits}-bit precision ({guard_bits} guard bits"
                    + (f", {amplification} amplification bits" if amplification else "")
                    + f") and {integer_bits} integer bits needs log q = {total} bits; at {security}-bit "
                    f"security the largest ring, n = {largest}, allows "
                    f"{max_coeff_modulus_bits(largest, security)}. Reduce the depth or the "
                    "precision, or lower the security.")
            break
        base_note = (f"first prime {bits[0]} bits" if base_primes == 1 else
                     f"base of {base_primes} primes {list(bits[:base_primes])} (over {MAX_PRIME_BITS} bits "
                     f"for one)") + f" = scale + {integer_bits} integer bits + 2"
        notes = [f"security table: n={n} allows log q <= {max_coeff_modulus_bits(n, security)} bits "
                 f"at {security}-bit security ({SOURCE}); the chain {list(bits)} uses {total}",
                 f"scale 2^{scale_bits} = {precision_bits} bits of precision + "
                 + (f"{amplification} amplification bits + " if amplification_bits is not None else "")
                 + f"{guard_bits} guard bits; {base_note}; {depth} level(s)"] + failures
        if batch_size:
            notes.append(_groups_note(batch_size, n // 2))
        params = Parameters("ckks", n, bits, scale_bits=scale_bits, security=security, depth=depth,
                            precision_bits=precision_bits, integer_bits=integer_bits,
                            amplification_bits=amplification_bits, base_primes=base_primes,
                            notes=tuple(notes))
        if not trial:
            return params
        chain_error, op_error = trial_ckks(params)
        limit = 2.0 ** -(target + 1)  # one bit of margin over the trial's keys and inputs
        if amplification_bits is None:
            error, what = (max(chain_error, op_error),
                           f"after {depth} squaring(s) of values in [-1, 1], or added by one op")
        else:
            error, what = op_error, "added by one op (public-key encryption, rescaling, relinearisation)"
        if error <= limit:
            return _with_note(params, f"trial run: max error 2^{_log2(error):.1f} {what} "
                                      f"(required <= 2^-{target + 1}: one bit of margin)")
        failures.append(f"scale 2^{scale_bits} rejected: the trial's error 2^{_log2(error):.1f} "
                        f"{what} exceeds 2^-{target + 1}")
    else:
        stop = f"the trial never met the precision with up to {guard_bits} guard bits."
    raise ParameterError(f"No CKKS parameters: {stop}"
                         + (" Rejected: " + "; ".join(failures) if failures else ""))


def _log2(value):
    return math.log2(max(value, 1e-300))


def trial_ckks(params):
    """Measure CKKS errors on real ciphertexts; return (chain error, largest per-op error).

    Chain: values in [-1, 1] encrypted with the secret key (the client's encryption), squared
    ``depth`` times. Values near 2^integer_bits must decrypt within the same relative precision,
    so the base really holds the integer part. Per op, over every slot: a public-key (the
    noisier, a server's) encryption of values in [-1, 1]; the error a plain product with its
    rescaling adds; and the error a ciphertext square with relinearisation and rescaling adds
    (each measured against the decryption of its input).
    """
    from .context import Context
    from .ops import decrypt, encrypt, multiply, square
    context = Context(params)
    rng = np.random.default_rng(0)
    values = rng.uniform(-1, 1, size=(64, 1))
    tensor, expected = encrypt(context, values), values.copy()
    for _ in range(params.depth):
        tensor, expected = square(tensor), expected ** 2
    error = float(np.max(np.abs(decrypt(context, tensor) - expected)))
    large = np.array([[2.0 ** params.integer_bits - 1], [-(2.0 ** params.integer_bits - 1)]])
    large_error = float(np.max(np.abs(decrypt(context, encrypt(context, large)) - large)))
    chain_error = max(error, large_error / 2 ** params.integer_bits)

    public = context.public()
    values = rng.uniform(-1, 1, size=(params.slot_count, 1))
    fresh = encrypt(public, values)
    decrypted = decrypt(context, fresh)
    op_errors = [np.abs(decrypted - values)]
    if params.depth:
        factor = 0.7
        op_errors.append(np.abs(decrypt(context, multiply(fresh, factor)) - factor * decrypted))
        op_errors.append(np.abs(decrypt(context, square(fresh)) - decrypted ** 2))
    return chain_error, float(max(np.max(e) for e in op_errors))


# ----------------------------------------------------------------- explanation
def explain(parameters):
    """Describe what ``parameters`` allow and why, recomputed from their fields.

    Works for parameters loaded from a file or built by hand (no notes needed): security
    headroom against the table, the value range, and for BFV the noise model's budget and
    the deepest computation it supports; the selection's own notes (trial result, rejected
    candidates) follow.

    Args:
        parameters: a :class:`Parameters`.

    Returns:
        A multi-line string.

    Example:
        >>> text = explain(select_parameters("bfv", depth=1, max_value=2**20, trial=False))
        >>> text.splitlines()[0]
        'BFV parameters, 128-bit security: n=8192, log q=218 bits [43, 43, 44, 44, 44]'
    """
    if not isinstance(parameters, Parameters):
        raise ParameterError(f"Expected `parameters` to be a Parameters. "
                             f"Received: {type(parameters).__name__}")
    p, n = parameters, parameters.poly_modulus_degree
    limit = max_coeff_modulus_bits(n, p.security)
    smaller = n // 2 if n // 2 in RING_DEGREES else None
    lines = [str(p).splitlines()[0],
             f"  security: log q = {p.coeff_modulus_bits} of the {limit} bits the table allows at "
             f"n={n}" + (f"; n={smaller} would allow {max_coeff_modulus_bits(smaller, p.security)}"
                         if smaller else "")]
    if p.scheme == "bfv":
        lines += _explain_bfv(p)
    else:
        lines += _explain_ckks(p)
    lines += ["  - " + note for note in p.notes]
    return "\n".join(lines)


def _explain_bfv(p):
    n, data_bits = p.poly_modulus_degree, sum(p.coeff_mod_bit_sizes[:-1])
    linear_bits = DEFAULT_LINEAR_BITS if p.linear_bits is None else p.linear_bits
    margin = DEFAULT_NOISE_MARGIN_BITS if p.noise_margin_bits is None else p.noise_margin_bits
    worst = max(p.plain_moduli)
    fresh = noise.fresh_budget_bits(n, data_bits, worst)
    per_level = linear_bits + noise.multiply_cost_bits(n, worst) + noise.add_cost_bits()
    capacity = math.floor((fresh - linear_bits - margin) / per_level)  # < 0: not even depth 0
    return [
        f"  values: exact integers |x| <= {p.max_exact_value} (~2^{math.log2(p.max_exact_value):.1f}), "
        f"{len(p.plain_moduli)} CRT prime(s), {p.slot_count} slots per ciphertext",
        f"  noise model (largest prime, 2^{math.log2(worst):.1f}): fresh budget {fresh:.1f} bits; "
        f"a linear layer of l1-norm 2^{linear_bits:g} costs {linear_bits:g}, a ciphertext "
        f"multiplication {noise.multiply_cost_bits(n, worst):.1f} + {noise.add_cost_bits():g} for "
        f"the following addition",
        f"  depth: {p.depth} asked; the model supports up to {capacity} (keeping {margin:g} bits of "
        f"margin), predicting "
        f"{predicted_bfv_budget(n, data_bits, worst, p.depth, linear_bits):.1f} bits left at depth {p.depth}",
    ]


def _explain_ckks(p):
    base, scale = p.coeff_mod_bit_sizes[:p.base_primes], p.scale_bits
    where = (f"first prime {base[0]} bits" if len(base) == 1 else
             f"base primes {list(base)} = {sum(base)} bits")
    lines = [f"  values: |x| < 2^{sum(base) - scale - 2} ({where} = scale {scale} + "
             f"integer bits + 2), {p.slot_count} slots per ciphertext",
             f"  levels: {p.levels} rescaling multiplication(s) of 2^{scale} each "
             f"(depth {p.depth} asked)"]
    if p.precision_bits is not None:
        amplification = p.amplification_bits or 0
        guard = scale - p.precision_bits - amplification
        if p.amplification_bits is None:
            lines.append(f"  precision: {p.precision_bits} fractional bits asked; the scale keeps "
                         f"{guard} guard bits for encoding and rescaling noise")
        else:
            lines.append(
                f"  precision: scale 2^{scale} = precision {p.precision_bits} + amplification "
                f"{amplification} + guard {guard} bits: each op adds at most 2^-{scale - guard} to a "
                f"value, and the computation amplifies that by at most 2^{amplification}, so the "
                f"output error stays below 2^-{p.precision_bits}")
    return lines


# ----------------------------------------------------------------- helpers
def _rings():
    return [n for n in RING_DEGREES if n >= MIN_RING]


def _groups_note(batch_size, slots):
    groups = math.ceil(batch_size / slots)
    return f"batch of {batch_size} -> {groups} ciphertext group(s) of {slots} slots"


def _with_note(params, note):
    data = params.to_dict()
    data["notes"] = list(params.notes) + [note]
    return Parameters.from_dict(data)


def _non_negative_int(value, name, minimum=0):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise ParameterError(f"Expected `{name}` to be {kind}. Received: {name}={value!r}")
    return int(value)


def _bits(value, default, name):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1000:
        raise ParameterError(f"Expected `{name}` to be a number of bits between 0 and 1000. "
                             f"Received: {name}={value!r}")
    return value


def _max_value(value):
    if value is None:
        raise ParameterError("BFV parameter selection needs `max_value`, a bound on |value| of every "
                             "intermediate result (heras computes it when preparing a model).")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ParameterError(f"Expected `max_value` to be a positive integer. Received: max_value={value!r}")
    return int(value)
