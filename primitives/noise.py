"""BFV noise-budget model: how many bits each operation consumes (heuristic, then verified).

The model is deliberately conservative. It serves two purposes: parameter selection predicts
the budget left after a computation (and a trial run measures it), and every encrypted BFV
tensor carries an estimate of the budget it has used, so an op that would exhaust the budget
is refused before it runs. Decryption additionally measures the true budget of every
ciphertext with the secret key and refuses garbage.

Calibration (SEAL 4.1 via TenSEAL 0.3.18): n=8192, 174-bit data modulus, t=20 bits: fresh
budget 146 bits; a ciphertext square plus relinearisation consumes 32 bits; a plaintext
multiplication by a constant c consumes log2(c) bits.
"""

import math


def fresh_noise_bits(poly_modulus_degree):
    """Bits of noise in a fresh public-key encryption (measured 8 at n=8192; +1 bit margin)."""
    return 0.5 * math.log2(poly_modulus_degree) + 2.5


def fresh_budget_bits(poly_modulus_degree, data_modulus_bits, plain_modulus):
    """Estimated invariant noise budget of a fresh ciphertext, in bits."""
    return data_modulus_bits - math.log2(plain_modulus) - fresh_noise_bits(poly_modulus_degree)


def multiply_cost_bits(poly_modulus_degree, plain_modulus):
    """Budget consumed by one ciphertext-ciphertext multiplication with relinearisation."""
    return math.log2(plain_modulus) + math.log2(poly_modulus_degree) + 1.0


def linear_cost_bits(l1_norm):
    """Budget consumed by a plaintext linear combination whose |weights| sum to ``l1_norm``."""
    return math.log2(l1_norm) if l1_norm > 1 else 0.0


def add_cost_bits():
    """Budget consumed by adding two ciphertexts (noises add: at most one bit)."""
    return 1.0
