"""BFV noise-budget model: how many bits each operation consumes (heuristic, then verified).

The model is deliberately conservative. It serves two purposes: parameter selection predicts
the budget left after a computation (and a trial run measures it), and every encrypted BFV
tensor carries an estimate of the budget it has used, so an op that would exhaust the budget
is refused before it runs. Decryption additionally measures the true budget of every
ciphertext with the secret key and refuses garbage.

Calibration (SEAL 4.1 via TenSEAL 0.3.18, 128-bit ``BFVDefault`` coefficient moduli; the
selection regroups the same bits into fewer primes, which measures the same budgets; public-key
encryption of uniformly random slots; SEAL's ``invariant_noise_budget``, which floors to whole
bits, minimum over 4 key generations; costs are differences of floored budgets, so +-1 bit):

    =====  ======  ======  ==================  =====  ============  =====  =======  ===
    n      data q  log t   fresh pk (secret)   model  square+relin  model  x 2^10   add
    =====  ======  ======  ==================  =====  ============  =====  =======  ===
    4096   72      16.8    48 (50)             46.7   28-29         29.8   10       1
    4096   72      20.0    45 (47)             43.5   32            33.0   10       1
    4096   72      40.0    24 (27)             23.5   exhausted     53.0   10       1
    4096   72      60.0     5 (7)               3.5   exhausted     73.0   -        1
    8192   174     16.8    149 (152)           148.2  29-30         30.8   10       1
    8192   174     20.0    146 (149)           145.0  32-33         34.0   10       1
    8192   174     30.0    136 (139)           135.0  42-43         44.0   10       1
    8192   174     40.0    126 (129)           125.0  52-53         54.0   10       1
    8192   174     60.0    106 (109)           105.0  72            74.0   10       1
    16384  389     16.0    365 (368)           363.5  29-31         31.0   10       1
    16384  389     30.0    350 (354)           349.5  43-45         45.0   10       1
    16384  389     40.0    340 (344)           339.5  53-55         55.0   10       1
    16384  389     60.0    321 (324)           319.5  73-74         75.0   10       1
    =====  ======  ======  ==================  =====  ============  =====  =======  ===

End to end (the chain parameter selection assumes: a linear layer of l1-norm 2^L, then square,
relinearise and add, ``depth`` times, then a final linear layer), over n in {4096, 8192,
16384}, log t in 16..60, L in {0, 10, 20}, depth 0..4 and 8 key generations per cell (284
cells with budget left), the measured budget minus the predicted one was never negative:
at least 0.5 / 2.0 / 3.3 / 4.3 / 5.4 bits at depth 0 / 1 / 2 / 3 / 4 (mean 0.9 / 2.6 / 3.6 /
4.7 / 5.7), and no cell the model called positive was exhausted. The model is thus about one
bit conservative per operation; the constants stay as they are rather than being tightened.

SEAL reduces a plaintext constant c >= t/2 as the negative number c - t only when t exceeds a
coefficient prime; otherwise multiplying by t - c (i.e. -c) costs log2(t) bits, not log2(c).
The encrypted backend therefore multiplies by |c| and negates, so ``linear_cost_bits`` holds.
Secret-key (symmetric) encryption starts 2-4 bits richer than the public-key figures above,
which the model assumes, so ciphertexts a server encrypts are covered too.
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
