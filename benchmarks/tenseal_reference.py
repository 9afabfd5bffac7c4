"""The straightforward TenSEAL implementation of a prepared dense network, for comparison.

What a TenSEAL user writes: the batch across slots (``ts.bfv_tensor(..., batch=True)``), each
dense layer one ``mm`` with the integer weights, ``square()`` for the activation, ``+`` for the
bias. TenSEAL has one plaintext modulus, so a plan with k CRT primes runs k times (one context
per prime, the same n, plaintext primes and coefficient modulus bits as ours) and the
residues are recombined; the outputs are checked bit for bit against our discretised model.
TenSEAL does no overflow or noise checking: a mismatch here is reported, not raised.

Coefficient primes: TenSEAL gets SEAL's ``BFVDefault`` split of the same bits (what its users
get), not ours (the same bits in fewer, larger primes). With plaintext primes smaller than
every coefficient prime, SEAL multiplies by a negative weight w as t - |w|, which costs
log2(t) noise bits instead of log2|w|: DNN-30 (one 55-bit t) on our 58-bit primes decrypts to
garbage under TenSEAL. Our backend multiplies by |w| and negates, so it is unaffected.
"""

import time

import numpy as np
import tenseal as ts
from tenseal import sealapi

from primitives import crt


def dense_layers(model):
    """The prepared integer network as [("dense", kernel, bias) | ("square",)] steps.

    Raises:
        ValueError: for a layer the reference does not implement (it covers Flatten, Dense,
            Square, Dropout).
    """
    steps = []
    for layer in model.layers:
        name = layer.__class__.__name__
        if name == "Dense":
            weights = layer._encryption_weights
            kernel = np.asarray(weights["kernel"], dtype=np.int64)
            bias = np.asarray(weights.get("bias", np.zeros(kernel.shape[1])), dtype=object)
            steps.append(("dense", kernel, bias))
            activation = getattr(layer, "heras_activation", None)
            if activation is not None and activation.name == "square":
                steps.append(("square",))
        elif name == "Square":
            steps.append(("square",))
        elif name not in ("Flatten", "Dropout"):
            raise ValueError(f"The TenSEAL reference implements Flatten/Dense/Square only, not {name}.")
    return steps


def run(model, plan, x_quantized, repeats=1):
    """Encrypt ``x_quantized`` (one batch: at most n samples) with TenSEAL, run, decrypt.

    Returns a dict: encrypt_s, forward_s (server time summed over CRT primes; per prime the
    median of ``repeats`` passes), decrypt_s, outputs (exact signed integers, CRT-combined)
    and the number of primes.
    """
    params = plan.parameters
    x = np.asarray(x_quantized).reshape(len(x_quantized), -1)
    steps = dense_layers(model)
    residues, timing = [], {"encrypt_s": 0.0, "forward_s": 0.0, "decrypt_s": 0.0}
    coeff_bits = default_coeff_mod_bit_sizes(params)
    for t in params.plain_moduli:
        context = ts.context(ts.SCHEME_TYPE.BFV, poly_modulus_degree=params.poly_modulus_degree,
                             plain_modulus=t, coeff_mod_bit_sizes=coeff_bits)
        start = time.perf_counter()
        encrypted = ts.bfv_tensor(context, ts.plain_tensor(np.mod(x, t).tolist(), dtype="int"),
                                  batch=True).reshape([1, x.shape[1]])
        timing["encrypt_s"] += time.perf_counter() - start
        passes = []
        for _ in range(repeats):
            start = time.perf_counter()
            result = _forward(encrypted, steps, t)
            passes.append(time.perf_counter() - start)
        timing["forward_s"] += float(np.median(passes))
        encrypted = result
        start = time.perf_counter()
        decrypted = np.asarray(encrypted.decrypt().tolist(), dtype=np.int64).reshape(len(x), -1)
        timing["decrypt_s"] += time.perf_counter() - start
        residues.append(np.mod(decrypted, t).astype(np.uint64))
    outputs = crt.reconstruct(residues, list(params.plain_moduli))
    return {**timing, "outputs": outputs, "primes": len(params.plain_moduli), "coeff_mod_bit_sizes": coeff_bits}


def default_coeff_mod_bit_sizes(params):
    """SEAL's ``BFVDefault`` prime sizes for the plan's ring and security, when they have the
    plan's total bits and no prime equal to a plaintext prime; else the plan's own sizes."""
    levels = {128: sealapi.SEC_LEVEL_TYPE.TC128, 192: sealapi.SEC_LEVEL_TYPE.TC192,
              256: sealapi.SEC_LEVEL_TYPE.TC256}
    n = params.poly_modulus_degree
    default = sealapi.CoeffModulus.BFVDefault(n, levels[params.security])
    bits = [m.bit_count() for m in default]
    if (len(bits) < 2 or sum(bits) != sum(params.coeff_mod_bit_sizes)
            or {m.value() for m in default} & set(params.plain_moduli)):
        return list(params.coeff_mod_bit_sizes)
    return bits


def _forward(encrypted, steps, t):
    """The network on a TenSEAL tensor, mod the plaintext prime ``t`` (inputs untouched)."""
    for step in steps:
        if step[0] == "square":
            encrypted = encrypted.square()
        else:
            _, kernel, bias = step
            encrypted = encrypted.mm(np.mod(kernel, t).tolist())
            encrypted = encrypted + [int(b) % t for b in bias]
    return encrypted
