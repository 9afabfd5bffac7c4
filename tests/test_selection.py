"""Parameter selection: minimal, secure, confirmed by a trial run; impossible requests explained."""

import math
import re

import numpy as np
import pytest
from tenseal import sealapi

import primitives as P
from primitives import noise, select_parameters, selection
from primitives.cli import main, parse_integer
from primitives.security import MAX_COEFF_MODULUS_BITS
from primitives.selection import (bfv_coeff_mod_bit_sizes, explain, predicted_bfv_budget,
                                  smallest_prime_bits, trial_bfv)

LEVELS = {128: sealapi.SEC_LEVEL_TYPE.TC128, 192: sealapi.SEC_LEVEL_TYPE.TC192,
          256: sealapi.SEC_LEVEL_TYPE.TC256}


def test_security_table_matches_seal():
    for security, table in MAX_COEFF_MODULUS_BITS.items():
        for n, bits in table.items():
            assert sealapi.CoeffModulus.MaxBitCount(n, LEVELS[security]) == bits


def plain_prime(n, bits, security=128):
    """The largest batching prime of ``bits`` bits at ``n`` that is not a coefficient prime."""
    coefficient = {m.value() for m in sealapi.CoeffModulus.Create(
        n, list(bfv_coeff_mod_bit_sizes(n, security)))}
    for count in (1, 2, 3):  # SEAL picks the largest primes of a size; skip coefficient primes
        free = [m.value() for m in sealapi.PlainModulus.Batching(n, [bits] * count)
                if m.value() not in coefficient]
        if free:
            return free[0]
    raise AssertionError(f"no free {bits}-bit batching prime at n={n}")


def bfv_params(n, t_bits, depth, linear_bits, security=128):
    bits = bfv_coeff_mod_bit_sizes(n, security)
    return P.Parameters("bfv", n, bits, (plain_prime(n, t_bits, security),), security=security,
                        depth=depth, linear_bits=linear_bits, noise_margin_bits=10)


def model_prediction(params):
    data_bits = sum(params.coeff_mod_bit_sizes[:-1])
    return min(predicted_bfv_budget(params.poly_modulus_degree, data_bits, t, params.depth,
                                    params.linear_bits) for t in params.plain_moduli)


# ----------------------------------------------------------------- the noise model
@pytest.mark.parametrize("n, t_bits, depth, linear_bits", [
    (4096, 17, 0, 0), (4096, 17, 1, 0), (4096, 30, 0, 20), (4096, 60, 0, 0),
    (8192, 20, 0, 20), (8192, 20, 2, 20), (8192, 30, 2, 0), (8192, 41, 1, 20), (8192, 60, 1, 10),
])
def test_noise_model_never_promises_more_than_seal_delivers(n, t_bits, depth, linear_bits):
    """The budget SEAL measures (public-key encryption, the noisier one) is at least the model's."""
    params = bfv_params(n, t_bits, depth, linear_bits)
    predicted = model_prediction(params)
    assert predicted > 0  # a case where the model makes a claim
    assert trial_bfv(params) >= predicted


@pytest.mark.parametrize("t_bits", [17, 30, 45, 60])
@pytest.mark.parametrize("depth", [0, 2, 4])
def test_noise_model_is_conservative_at_16384(t_bits, depth):
    """The calibration grid's largest ring, up to depth 4 (about 3 s for all 12 cases)."""
    params = bfv_params(16384, t_bits, depth, 20)
    predicted = model_prediction(params)
    measured = trial_bfv(params)
    assert measured >= predicted or (measured == 0 and predicted < 0)


def test_noise_model_costs_match_the_calibration():
    """Spot values of the calibration table in primitives/noise.py (SEAL measured 145-146 bits
    fresh at n=8192, t=2^20, and 32-33 bits per square: the model sits just below)."""
    t = plain_prime(8192, 20)
    assert 144 <= noise.fresh_budget_bits(8192, 174, t) <= 146
    assert 33 <= noise.multiply_cost_bits(8192, t) <= 35
    assert noise.linear_cost_bits(2 ** 10) == 10 and noise.linear_cost_bits(1) == 0


# ----------------------------------------------------------------- BFV
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
        smallest_t = 2 ** smallest_prime_bits(smaller)
        assert predicted_bfv_budget(smaller, sum(bits[:-1]), smallest_t, depth, 20) < 10
        assert any(note.startswith(f"n={smaller} rejected") for note in params.notes)
    # minimal prime count: one prime fewer cannot reach 2 * max_value within 60 bits, or the
    # noise budget with larger primes falls below the margin
    k = len(params.plain_moduli)
    if k > 1:
        bits_needed = math.ceil(math.log2(2 * max_value + 1) / (k - 1))
        n = params.poly_modulus_degree
        data_bits = sum(params.coeff_mod_bit_sizes[:-1])
        assert bits_needed > 60 or predicted_bfv_budget(n, data_bits, 2 ** bits_needed, depth, 20) < 10


@pytest.mark.parametrize("scheme, kwargs, n_by_security", [
    ("bfv", dict(depth=1, max_value=2 ** 40), {128: 8192, 256: 16384}),
    ("bfv", dict(depth=0, max_value=2 ** 20), {128: 4096, 192: 8192}),
    ("ckks", dict(depth=3), {128: 8192, 192: 16384}),
    ("ckks", dict(depth=6), {128: 16384, 256: 32768}),
])
def test_higher_security_needs_a_larger_ring(scheme, kwargs, n_by_security):
    for security, n in n_by_security.items():
        params = select_parameters(scheme, security=security, trial=False, **kwargs)
        assert params.poly_modulus_degree == n
        assert params.coeff_modulus_bits <= MAX_COEFF_MODULUS_BITS[security][n]


def test_bfv_parameters_really_hold_the_depth():
    """The chosen parameters run a dense -> square -> dense path exactly, with budget to spare."""
    params = select_parameters("bfv", depth=1, max_value=2 ** 34)
    context = P.Context(params)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 16, size=(16, 40))
    w1, w2 = rng.integers(-7, 8, size=(40, 5)), rng.integers(-7, 8, size=(5, 3))
    out = P.matmul(P.square(P.matmul(P.encrypt(context, x, bound=15), w1)), w2)
    np.testing.assert_array_equal(P.decrypt(context, out), ((x @ w1) ** 2) @ w2)
    assert out.noise_budget() >= params.noise_margin_bits


def test_a_failed_trial_moves_to_the_next_candidate(monkeypatch):
    real_trial = selection.trial_bfv
    monkeypatch.setattr(selection, "trial_bfv",
                        lambda p: 3 if p.poly_modulus_degree == 8192 else real_trial(p))
    params = select_parameters("bfv", depth=1, max_value=2 ** 40)
    assert params.poly_modulus_degree == 16384
    assert any("n=8192 with 1 prime(s) rejected: the trial left 3 bits" in note for note in params.notes)


def test_trial_result_is_recorded_against_the_prediction():
    params = select_parameters("bfv", depth=2, max_value=2 ** 30)
    note = next(note for note in params.notes if note.startswith("trial run"))
    measured, predicted = map(float, re.search(r"(\d+) bits .*predicted (-?[\d.]+)", note).groups())
    assert measured >= predicted >= params.noise_margin_bits


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


@pytest.mark.parametrize("scheme, kwargs, groups", [
    ("bfv", dict(depth=1, max_value=2 ** 40, batch_size=20000), "3 ciphertext group(s) of 8192 slots"),
    ("ckks", dict(depth=3, batch_size=4096), "1 ciphertext group(s) of 4096 slots"),
])
def test_batch_size_is_reported_in_ciphertext_groups(scheme, kwargs, groups):
    params = select_parameters(scheme, trial=False, **kwargs)
    assert any(groups in note for note in params.notes)


# ----------------------------------------------------------------- CKKS
def test_ckks_chain_and_precision():
    params = select_parameters("ckks", depth=3, precision_bits=20, integer_bits=10)
    bits = params.coeff_mod_bit_sizes
    assert params.poly_modulus_degree == 8192 and params.levels == 3
    assert bits[1:-1] == (params.scale_bits,) * 3 and bits[0] == params.scale_bits + 10 + 2
    assert bits[-1] >= max(bits[:-1]) and params.scale_bits >= 20 + 14
    assert MAX_COEFF_MODULUS_BITS[128][4096] < sum(bits) <= MAX_COEFF_MODULUS_BITS[128][8192]
    assert any(note.startswith("trial run") for note in params.notes)


def test_ckks_parameters_deliver_the_precision():
    """x^4 for |x| <= 3 (intermediate bounds 2^2, 2^4, 2^8 as the backend tracks them) keeps 16
    bits of precision relative to the largest value."""
    params = select_parameters("ckks", depth=2, precision_bits=16, integer_bits=9)
    context = P.Context(params)
    x = np.random.default_rng(3).uniform(-3, 3, size=(8, 5))
    out = P.decrypt(context, P.square(P.square(P.encrypt(context, x))))
    assert np.max(np.abs(out - x ** 4)) <= 3 ** 4 * 2.0 ** -16


def test_ckks_amplification_bits_widen_the_scale_and_split_the_base():
    """A network amplifying per-op errors by 2^16 with outputs up to 2^16: scale 20 + 16 + guard,
    and scale + 16 integer bits + 2 exceed one 60-bit prime, so the base is two primes."""
    params = select_parameters("ckks", depth=3, precision_bits=20, integer_bits=16, amplification_bits=16)
    guard = params.scale_bits - 36
    assert guard >= selection.CKKS_GUARD_BITS and params.amplification_bits == 16
    bits = params.coeff_mod_bit_sizes
    assert params.base_primes == 2 and len(bits) == 2 + 3 + 1 and params.levels == 3
    assert sum(bits[:2]) >= params.scale_bits + 16 + 2 and max(bits) <= 60
    assert bits[2:-1] == (params.scale_bits,) * 3 and bits[-1] >= max(bits[:-1])
    note = next(n for n in params.notes if n.startswith("trial run"))
    assert "added by one op" in note
    text = explain(params)
    assert f"scale 2^{params.scale_bits} = precision 20 + amplification 16 + guard {guard} bits" in text
    assert "|x| < 2^16" in text and "base primes" in text
    context = P.Context(params)   # SEAL accepts the chain; values up to 2^16 survive the last level
    x = np.array([[2.0 ** 15], [-1.0]])
    assert np.max(np.abs(P.decrypt(context, P.multiply(P.multiply(P.multiply(
        P.encrypt(context, x), 1.0), 1.0), 1.0)) - x)) < 2.0 ** -20
    assert P.Parameters.from_json(params.to_json()) == params


def test_ckks_scale_out_of_room_names_precision_amplification_and_guard(monkeypatch):
    monkeypatch.setattr(selection, "trial_ckks", lambda params: (1.0, 1.0))   # never precise enough
    with pytest.raises(P.ParameterError, match=r"scale 2\^62 = precision 20 \+ amplification 20 \+ guard "
                                                r"22 bits would exceed SEAL's 60-bit primes\. Lower "
                                                r"precision_bits \(to 18 or less\), or the amplification"):
        select_parameters("ckks", depth=1, precision_bits=20, integer_bits=4, amplification_bits=20)


def test_ckks_per_op_trial_covers_public_key_encryption():
    params = select_parameters("ckks", depth=2, precision_bits=20, integer_bits=4, trial=False)
    chain, per_op = selection.trial_ckks(params)
    # a public-key encryption's error is ~2^13.5 / scale at n = 8192; a secret-key one's ~2^10
    assert params.poly_modulus_degree == 8192
    assert 2.0 ** 12 < per_op * 2.0 ** params.scale_bits < 2.0 ** 16
    assert chain * 2.0 ** params.scale_bits < 2.0 ** 15  # two squarings of secret-key encryptions


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, message", [
    (dict(scheme="ckks", depth=20, precision_bits=30),
     r"needs log q = 992 bits; at 128-bit security the largest ring, n = 32768, allows 881"),
    (dict(scheme="ckks", depth=2, precision_bits=50), "caps primes at 60 bits"),
    (dict(scheme="bfv", depth=20, max_value=2 ** 60),
     r"n = 32768, even 18-bit plaintext primes need a data modulus of \d+ bits.*allows log q = 881"),
    (dict(scheme="bfv", depth=1, max_value=2 ** 2000), r"n = 32768, the noise allows plaintext primes of at most 60 bits and 16 of them give T < 2\^960, short of 2 \* max_value = 2\^2001.0"),
    (dict(scheme="bfv", depth=1), "needs `max_value`"),
    (dict(scheme="bfv", depth=-1, max_value=5),
     re.escape("Expected `depth` to be a non-negative integer. Received: depth=-1")),
    (dict(scheme="bfv", depth=1.0, max_value=5), "depth=1.0"),
    (dict(scheme="bfv", depth=1, max_value=1.5), "max_value=1.5"),
    (dict(scheme="bfv", depth=1, max_value=5, batch_size=0), "batch_size=0"),
    (dict(scheme="bfv", depth=1, max_value=5, security=100), "security"),
    (dict(scheme="bfv", depth=1, max_value=5, precision_bits=20), "CKKS"),
    (dict(scheme="ckks", depth=1, max_value=5), "BFV settings"),
    (dict(scheme="ckks", depth=1, integer_bits=0), "integer_bits"),
    (dict(scheme="bfv", depth=1, max_value=5, amplification_bits=3), "amplification_bits"),
    (dict(scheme="ckks", depth=1, amplification_bits=2.5), "whole number"),
    (dict(scheme="ckks", depth=1, precision_bits=30, amplification_bits=20), "scale of 2\\^64.*amplification"),
    (dict(scheme="paillier", depth=1), "scheme"),
])
def test_impossible_or_invalid_requests_explain_themselves(kwargs, message):
    scheme = kwargs.pop("scheme")
    with pytest.raises(P.ParameterError, match=message):
        select_parameters(scheme, trial=False, **kwargs)


# ----------------------------------------------------------------- serialisation, explain
def test_parameters_round_trip_yaml_and_json():
    params = select_parameters("bfv", depth=1, max_value=2 ** 30, trial=False)
    assert P.Parameters.from_yaml(params.to_yaml()) == params
    assert P.Parameters.from_json(params.to_json()) == params
    assert P.Parameters.from_yaml(params.to_yaml()).notes == params.notes


def test_explain_states_a_depth_capacity_that_holds():
    """explain() works without notes; the depth it claims the ring supports really runs."""
    chosen = select_parameters("bfv", depth=1, max_value=2 ** 30, trial=False)
    bare = P.Parameters.from_dict({**chosen.to_dict(), "notes": []})
    text = explain(bare)
    assert "security: log q = 218 of the 218 bits" in text and "n=4096 would allow 109" in text
    capacity = int(re.search(r"supports up to (\d+)", text).group(1))
    assert capacity >= 1
    deeper = P.Parameters.from_dict({**bare.to_dict(), "depth": capacity})
    assert trial_bfv(deeper) >= 10


def test_explain_ckks():
    text = explain(P.Parameters("ckks", 8192, (50, 30, 30, 50), scale_bits=30, depth=2))
    assert "|x| < 2^18" in text and "levels: 2 rescaling" in text
    with pytest.raises(P.ParameterError, match="Parameters"):
        explain({"scheme": "ckks"})


# ----------------------------------------------------------------- CLI
@pytest.mark.parametrize("text, value", [("4096", 4096), ("1e12", 10 ** 12), ("2^40", 2 ** 40),
                                         ("2**62", 2 ** 62), ("1.5e3", 1500), ("10_000", 10000),
                                         ("1E+18", 10 ** 18)])
def test_cli_parses_exact_integers(text, value):
    assert parse_integer(text) == value


@pytest.mark.parametrize("text", ["1.5", "1.25e1", "2^-3", "-5", "1e-3", "ten"])
def test_cli_rejects_inexact_integers(text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["params", "--scheme", "bfv", "--depth", "1", "--max-value", text])
    assert exit_info.value.code == 2 and "--max-value" in capsys.readouterr().err


def test_cli_params_prints_choice_and_reasons(capsys):
    assert main(["params", "--scheme", "bfv", "--depth", "1", "--max-value", "1e12", "--security", "128"]) == 0
    out = capsys.readouterr().out
    assert "n=8192" in out and "security table" in out and "noise model" in out and "trial run" in out
    assert "n=4096 rejected" in out and "supports up to" in out


def test_cli_params_json_yaml_and_errors(capsys):
    assert main(["params", "--scheme", "ckks", "--depth", "2", "--json", "--no-trial"]) == 0
    from_json = P.Parameters.from_json(capsys.readouterr().out)
    assert from_json == select_parameters("ckks", depth=2, trial=False)
    assert main(["params", "--scheme", "bfv", "--depth", "1", "--max-value", "2^30", "--yaml", "--no-trial"]) == 0
    assert P.Parameters.from_yaml(capsys.readouterr().out).max_value == 2 ** 30
    assert main(["params", "--scheme", "ckks", "--depth", "40"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sealion params: error:") and "allows 881" in err and "Traceback" not in err
    assert main(["params", "--scheme", "bfv", "--depth", "1"]) == 2
    assert "max_value" in capsys.readouterr().err
    for argv in ([], ["params", "--scheme", "bfv"], ["params", "--scheme", "rsa", "--depth", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
