"""Parameter selection: minimal, secure, confirmed by a trial run; impossible requests explained."""

import json
import math

import pytest
from tenseal import sealapi

import primitives as P
from primitives import select_parameters
from primitives.cli import main, parse_integer
from primitives.security import MAX_COEFF_MODULUS_BITS
from primitives.selection import bfv_coeff_mod_bit_sizes, predicted_bfv_budget

LEVELS = {128: sealapi.SEC_LEVEL_TYPE.TC128, 192: sealapi.SEC_LEVEL_TYPE.TC192,
          256: sealapi.SEC_LEVEL_TYPE.TC256}


def test_security_table_matches_seal():
    for security, table in MAX_COEFF_MODULUS_BITS.items():
        for n, bits in table.items():
            assert sealapi.CoeffModulus.MaxBitCount(n, LEVELS[security]) == bits


def check_bfv(params, max_value, security):
    n = params.poly_modulus_degree
    assert params.security == security
    assert params.coeff_modulus_bits <= MAX_COEFF_MODULUS_BITS[security][n]
    assert all(P.parameters.is_prime(t) and t % (2 * n) == 1 for t in params.plain_moduli)
    assert len(set(params.plain_moduli)) == len(params.plain_moduli)
    assert math.prod(params.plain_moduli) > 2 * max_value
    assert any(note.startswith("trial run") for note in params.notes)


@pytest.mark.parametrize("depth, max_value, security, expected_n, expected_k", [
    (0, 2 ** 20, 128, 4096, 1),
    (1, 2 ** 40, 128, 8192, 1),
    (1, 10 ** 12, 128, 8192, 1),
    (2, 2 ** 60, 128, 8192, 3),      # beyond one 60-bit modulus: CRT
    (1, 2 ** 40, 192, 8192, 3),
    (1, 2 ** 40, 256, 16384, 1),
])
def test_bfv_choices_are_minimal(depth, max_value, security, expected_n, expected_k):
    params = select_parameters("bfv", depth=depth, max_value=max_value, security=security)
    check_bfv(params, max_value, security)
    assert (params.poly_modulus_degree, len(params.plain_moduli)) == (expected_n, expected_k)
    # minimal ring: one size smaller cannot hold the depth even with the smallest primes
    smaller = params.poly_modulus_degree // 2
    if smaller >= 4096:
        bits = bfv_coeff_mod_bit_sizes(smaller, security)
        smallest_t = 2 ** (math.ceil(math.log2(2 * smaller)) + 2)
        assert predicted_bfv_budget(smaller, sum(bits[:-1]), smallest_t, depth, 20) < 10
    # minimal prime count: one prime fewer cannot reach 2 * max_value within 60 bits, or the
    # noise budget with larger primes falls below the margin
    k = len(params.plain_moduli)
    if k > 1:
        bits_needed = math.ceil(math.log2(2 * max_value + 1) / (k - 1))
        n = params.poly_modulus_degree
        data_bits = sum(params.coeff_mod_bit_sizes[:-1])
        assert bits_needed > 60 or predicted_bfv_budget(n, data_bits, 2 ** bits_needed, depth, 20) < 10


def test_bfv_parameters_really_hold_the_depth():
    """The chosen parameters run a dense -> square -> dense path exactly, with budget to spare."""
    import numpy as np
    params = select_parameters("bfv", depth=1, max_value=2 ** 34)
    context = P.Context(params)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 16, size=(16, 40))
    w1, w2 = rng.integers(-7, 8, size=(40, 5)), rng.integers(-7, 8, size=(5, 3))
    out = P.matmul(P.square(P.matmul(P.encrypt(context, x, bound=15), w1)), w2)
    np.testing.assert_array_equal(P.decrypt(context, out), ((x @ w1) ** 2) @ w2)
    assert out.noise_budget() >= params.noise_margin_bits


def test_ckks_chain_and_precision():
    params = select_parameters("ckks", depth=3, precision_bits=20, integer_bits=10)
    bits = params.coeff_mod_bit_sizes
    assert params.poly_modulus_degree == 8192 and params.levels == 3
    assert bits[1:-1] == (params.scale_bits,) * 3 and bits[0] == params.scale_bits + 10 + 2
    assert bits[-1] >= max(bits[:-1])
    assert sum(bits) <= MAX_COEFF_MODULUS_BITS[128][8192]
    assert any(note.startswith("trial run") for note in params.notes)


@pytest.mark.parametrize("kwargs, message", [
    (dict(scheme="ckks", depth=20, precision_bits=30), "needs log q >= 992 bits.* the largest ring, n = 32768, allows 881"),
    (dict(scheme="ckks", depth=2, precision_bits=50), "caps primes at 60 bits"),
    (dict(scheme="bfv", depth=20, max_value=2 ** 60), "n = 32768"),
    (dict(scheme="bfv", depth=1), "needs `max_value`"),
    (dict(scheme="bfv", depth=-1, max_value=5), "depth"),
    (dict(scheme="bfv", depth=1, max_value=5, security=100), "security"),
    (dict(scheme="bfv", depth=1, max_value=5, precision_bits=20), "CKKS"),
    (dict(scheme="ckks", depth=1, max_value=5), "BFV settings"),
    (dict(scheme="ckks", depth=1, integer_bits=0), "integer_bits"),
    (dict(scheme="paillier", depth=1), "scheme"),
])
def test_impossible_or_invalid_requests_explain_themselves(kwargs, message):
    scheme = kwargs.pop("scheme")
    with pytest.raises(P.ParameterError, match=message):
        select_parameters(scheme, trial=False, **kwargs)


def test_parameters_round_trip_yaml_and_json():
    params = select_parameters("bfv", depth=1, max_value=2 ** 30, trial=False)
    assert P.Parameters.from_yaml(params.to_yaml()) == params
    assert P.Parameters.from_json(params.to_json()) == params


@pytest.mark.parametrize("text, value", [("4096", 4096), ("1e12", 10 ** 12), ("2^40", 2 ** 40),
                                         ("2**62", 2 ** 62), ("1.5e3", 1500), ("10_000", 10000)])
def test_cli_parses_exact_integers(text, value):
    assert parse_integer(text) == value


def test_cli_params_prints_choice_and_reasons(capsys):
    assert main(["params", "--scheme", "bfv", "--depth", "1", "--max-value", "1e12", "--security", "128"]) == 0
    out = capsys.readouterr().out
    assert "n=8192" in out and "security table" in out and "noise model" in out and "trial run" in out


def test_cli_params_json_and_errors(capsys):
    assert main(["params", "--scheme", "ckks", "--depth", "2", "--json", "--no-trial"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scheme"] == "ckks" and len(data["coeff_mod_bit_sizes"]) == 4
    assert main(["params", "--scheme", "ckks", "--depth", "40"]) == 2
    assert "allows 881" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["params", "--scheme", "bfv", "--depth", "1", "--max-value", "1.5"])
    assert exit_info.value.code == 2


def test_fractional_linear_bits_are_accepted():
    params = select_parameters("bfv", depth=1, max_value=47026884450, linear_bits=11.4)
    assert params.linear_bits == 11.4 and any(note.startswith("trial run") for note in params.notes)


def test_plaintext_primes_never_coincide_with_coefficient_primes():
    """A 44-bit plaintext prime at n=8192 would equal one of BFVDefault's 44-bit coefficient
    primes (SEAL picks the largest of each size); the selection must skip it."""
    params = select_parameters("bfv", depth=1, max_value=2 ** 43 - 5, trial=False)
    coefficient_primes = {m.value() for m in sealapi.CoeffModulus.Create(
        params.poly_modulus_degree, list(params.coeff_mod_bit_sizes))}
    assert not coefficient_primes & set(params.plain_moduli)
    P.Context(params)  # SEAL accepts it
