"""Single-ciphertext building blocks on one SEAL component (a CRT prime or the CKKS context).

Every function returns a new ciphertext and never modifies its inputs, so ciphertexts may be
shared between tensors safely. Plaintext constants are cached per component.
"""

import math

from tenseal import sealapi

from ...errors import SchemeError

SCALE_TOLERANCE = 1e-6  # CKKS: relative scale mismatch accepted (and corrected) when adding


def new(component):
    return sealapi.Ciphertext(component.seal_context)


def zero(component, like):
    """A fresh encryption of 0 at the level (and, for CKKS, scale) of ``like``."""
    out = new(component)
    component.encryptor.encrypt_zero(like.parms_id(), out)
    out.scale = like.scale
    return out


def is_bfv(component):
    return component.plain_modulus is not None


# ----------------------------------------------------------------- plaintexts
def bfv_constant(component, residue):
    """Constant polynomial ``residue`` in [1, t): the same value in every slot."""
    key = ("bfv", residue)
    plain = component.cache.get(key)
    if plain is None:
        plain = component.cache[key] = sealapi.Plaintext(format(residue, "X"))
    return plain


def bfv_slots(component, residues):
    """Plaintext holding ``residues`` (ints in [0, t)) slot by slot, zero-padded."""
    plain = sealapi.Plaintext()
    values = list(residues) + [0] * (component.encoder.slot_count() - len(residues))
    component.encoder.encode(values, plain)
    return plain


def ckks_plain(component, value, like, scale):
    """CKKS plaintext of ``value`` (a float or a list) at the level of ``like`` and ``scale``.

    Not cached: real weights rarely repeat, and each plaintext holds n x L coefficients.
    """
    plain = sealapi.Plaintext()
    component.encoder.encode(value, like.parms_id(), scale, plain)
    return plain


# ----------------------------------------------------------------- ciphertext arithmetic
def add(component, a, b):
    a, b = align(component, a, b)
    out = new(component)
    component.evaluator.add(a, b, out)
    return out


def sub(component, a, b):
    a, b = align(component, a, b)
    out = new(component)
    component.evaluator.sub(a, b, out)
    return out


def negate(component, a):
    out = new(component)
    component.evaluator.negate(a, out)
    return out


def add_plain(component, a, plain):
    out = new(component)
    component.evaluator.add_plain(a, plain, out)
    return out


def multiply_plain(component, a, plain):
    out = new(component)
    component.evaluator.multiply_plain(a, plain, out)
    return out


def multiply(component, a, b, relinearize=True):
    """Ciphertext product; CKKS rescales once.

    With ``relinearize=False`` the product keeps three polynomials: relinearisation is
    deferred to whoever needs two (the next product, via :func:`relinearized`). A linear layer
    with fewer outputs than inputs then relinearises its outputs only (SEALion's networks:
    3,136 squares feed 100 outputs), and SEAL adds, multiplies by plaintexts, decrypts and
    serialises 3-polynomial ciphertexts as they are.
    """
    same = a is b
    a = relinearized(component, a)
    b = a if same else relinearized(component, b)
    a, b = align(component, a, b)
    out = new(component)
    if a is b:
        component.evaluator.square(a, out)
    else:
        component.evaluator.multiply(a, b, out)
    if relinearize:
        component.evaluator.relinearize_inplace(out, component.relin_keys)
    if not is_bfv(component):
        component.evaluator.rescale_to_next_inplace(out)
    return out


def relinearized(component, a):
    """``a`` with two polynomials: itself, or a relinearised copy of a deferred product."""
    if a.size() <= 2:
        return a
    out = new(component)
    component.evaluator.relinearize(a, component.relin_keys, out)
    return out


def rescale(component, a):
    """CKKS: divide by the current last prime (in place on a ciphertext we own)."""
    component.evaluator.rescale_to_next_inplace(a)
    return a


def align(component, a, b):
    """CKKS: bring two ciphertexts to the same level and scale (copies, inputs untouched)."""
    if is_bfv(component):
        return a, b
    level_a, level_b = component.chain_index(a), component.chain_index(b)
    if level_a > level_b:
        a = switch_to(component, a, b)
    elif level_b > level_a:
        b = switch_to(component, b, a)
    if a.scale != b.scale:
        if abs(a.scale - b.scale) > SCALE_TOLERANCE * max(a.scale, b.scale):
            raise SchemeError(
                f"CKKS operands have different scales (2^{math.log2(a.scale):.3f} vs 2^{math.log2(b.scale):.3f}); "
                "their sum would decode wrongly. Combine tensors that took the same path of "
                "multiplications, or multiply one by 1.0 to bring it to the other's level.")
        b = _rescaled_copy(component, b, a.scale)
    return a, b


def switch_to(component, a, target):
    """Copy of ``a`` at the level of ``target`` (CKKS modulus switching keeps the scale)."""
    out = new(component)
    component.evaluator.mod_switch_to(a, target.parms_id(), out)
    return out


def switch_next(component, a):
    """Copy of ``a`` one level down, without rescaling."""
    out = new(component)
    component.evaluator.mod_switch_to_next(a, out)
    return out


def _rescaled_copy(component, a, scale):
    """Copy of ``a`` whose recorded scale is ``scale`` (a relative change below the tolerance)."""
    out = new(component)
    component.evaluator.mod_switch_to(a, a.parms_id(), out)  # a copy at the same level
    out.scale = scale
    return out
