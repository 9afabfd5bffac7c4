"""Bad input gets a clear error naming the problem and the fix, and changes nothing."""

import numpy as np
import pytest
from tenseal import sealapi

import primitives as P
from primitives import Context, EncryptedTensor, Parameters, decrypt, encrypt
from primitives.backends.encrypted import seal_ops


@pytest.fixture
def x(bfv_context):
    return encrypt(bfv_context, np.arange(12).reshape(2, 6))


def unchanged(context, tensor, expected):
    np.testing.assert_array_equal(decrypt(context, tensor), expected)


def test_shape_mismatches(bfv_context, x):
    with pytest.raises(P.ShapeError, match=r"kernel of shape \(6, units\)"):
        P.matmul(x, np.ones((5, 2), dtype=int))
    with pytest.raises(P.ShapeError, match="do not broadcast"):
        P.add(x, encrypt(bfv_context, np.ones((2, 4), dtype=int)))
    with pytest.raises(P.ShapeError, match="Cannot reshape"):
        P.reshape(x, (4,))
    with pytest.raises(P.ShapeError, match=r"\(height, width, channels\)"):
        P.conv2d(x, np.ones((3, 3, 1, 1), dtype=int))
    with pytest.raises(P.ShapeError, match="batch"):
        P.sum(x, axis=0)
    with pytest.raises(P.ShapeError, match="batch size 1 or 2"):
        P.add(x, np.ones((3, 6), dtype=int))
    unchanged(bfv_context, x, np.arange(12).reshape(2, 6))


def test_wrong_scheme_and_mixed_contexts(bfv_context, ckks_context, x):
    with pytest.raises(TypeError, match="integers only"):
        P.multiply(x, 0.5)
    other = encrypt(Context(bfv_context.parameters), np.ones((2, 6), dtype=int))
    with pytest.raises(P.SchemeError, match="different contexts"):
        P.add(x, other)
    with pytest.raises(P.SchemeError, match="different contexts"):
        P.add(x, encrypt(ckks_context, np.ones((2, 6))))
    with pytest.raises(P.SchemeError, match="Batch sizes differ"):
        P.add(x, encrypt(bfv_context, np.ones((3, 6), dtype=int)))
    unchanged(bfv_context, x, np.arange(12).reshape(2, 6))


def test_bfv_overflow_is_refused_before_computing(bfv_context):
    limit = bfv_context.parameters.max_exact_value
    big = encrypt(bfv_context, np.array([[2 ** 30]]), bound=2 ** 30)
    with pytest.raises(P.OverflowRiskError, match="wrap around") as info:
        P.square(big)
    assert "max_value" in str(info.value) and str(2 ** 60) in str(info.value)
    with pytest.raises(P.OverflowRiskError, match="bound"):
        encrypt(bfv_context, np.array([[limit + 1]], dtype=object))
    with pytest.raises(P.OverflowRiskError, match="above the declared bound"):
        encrypt(bfv_context, np.array([[20]]), bound=10)
    unchanged(bfv_context, big, [[2 ** 30]])


def test_ckks_depth_is_refused_with_depth_needed_and_available(ckks_context):
    t = encrypt(ckks_context, np.full((1, 2), 0.5))
    for _ in range(3):
        t = P.square(t)
    assert t.levels_left == 0
    with pytest.raises(P.DepthExhaustedError, match="needs 1 more level.*has 0 left"):
        P.square(t)
    with pytest.raises(P.DepthExhaustedError):
        P.multiply(t, 0.5)
    np.testing.assert_allclose(decrypt(ckks_context, t), np.full((1, 2), 0.5 ** 8), atol=1e-3)


def test_bfv_noise_exhaustion_is_refused_by_the_guard(bfv_context):
    t = encrypt(bfv_context, np.array([[1]]), bound=1)
    t = P.square(t)
    with pytest.raises(P.DepthExhaustedError, match="noise budget"):
        P.square(t)


def test_exhausted_noise_is_detected_at_decryption(bfv_context):
    """If noise slips past the model (here: SEAL called directly), decryption refuses garbage."""
    t = encrypt(bfv_context, np.array([[3]]), bound=3)
    for c, component in enumerate(bfv_context.components):
        ct = t.data[c, 0, 0]
        for _ in range(3):
            ct = seal_ops.multiply(component, ct, ct)
        t.data[c, 0, 0] = ct
    with pytest.raises(P.NoiseBudgetExhaustedError, match="garbage"):
        decrypt(bfv_context, t)


def test_corrupted_truncated_and_foreign_bytes(bfv_context, x, tmp_path):
    blob = x.serialize()
    with pytest.raises(P.SerializationError, match="truncated"):
        EncryptedTensor.from_bytes(blob[:-100], bfv_context)
    corrupted = bytearray(blob)
    corrupted[-50] ^= 0xFF
    with pytest.raises(P.SerializationError, match="corrupted"):
        EncryptedTensor.from_bytes(bytes(corrupted), bfv_context)
    with pytest.raises(P.SerializationError, match="not a sealion artifact"):
        EncryptedTensor.from_bytes(b"PK\x03\x04 a zip file", bfv_context)
    with pytest.raises(P.SerializationError, match="hold a 'tensor'"):
        Context.from_bytes(blob)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello")
    with pytest.raises(P.SerializationError, match="not a sealion artifact"):
        Context.load(foreign)
    with pytest.raises(P.SerializationError, match="No context file"):
        Context.load(tmp_path / "missing.ctx")


def test_saving_does_not_clobber_on_failure(bfv_context, x, tmp_path):
    path = tmp_path / "x.tensor"
    x.save(path)
    before = path.read_bytes()
    with pytest.raises(P.SecretKeyError):
        bfv_context.public().save(path, save_secret_key=True)
    assert path.read_bytes() == before
    np.testing.assert_array_equal(decrypt(bfv_context, EncryptedTensor.load(path, bfv_context)),
                                  np.arange(12).reshape(2, 6))


@pytest.mark.parametrize("kwargs, message", [
    (dict(scheme="rsa", poly_modulus_degree=4096, coeff_mod_bit_sizes=(36, 36, 37)), "scheme"),
    (dict(scheme="bfv", poly_modulus_degree=3000, coeff_mod_bit_sizes=(36, 36, 37), plain_moduli=(40961,)),
     "poly_modulus_degree"),
    (dict(scheme="bfv", poly_modulus_degree=4096, coeff_mod_bit_sizes=(60, 60), plain_moduli=(40961,)),
     "allows at most 109 bits"),
    (dict(scheme="bfv", poly_modulus_degree=4096, coeff_mod_bit_sizes=(36, 36, 37), plain_moduli=(40963,)),
     "1 mod 8192"),
    (dict(scheme="ckks", poly_modulus_degree=4096, coeff_mod_bit_sizes=(36, 36, 37)), "scale_bits"),
    (dict(scheme="bfv", poly_modulus_degree=4096, coeff_mod_bit_sizes=(36, 36, 37), plain_moduli=(40961,),
          security=100), "security"),
])
def test_invalid_parameters(kwargs, message):
    with pytest.raises(P.ParameterError, match=message):
        Parameters(**kwargs)


def test_parameters_round_trip_and_reject_unknown_keys(bfv_context):
    params = bfv_context.parameters
    assert Parameters.from_json(params.to_json()) == params
    assert Parameters.from_yaml(params.to_yaml()) == params
    with pytest.raises(P.ParameterError, match="Unknown parameter keys"):
        Parameters.from_dict({**params.to_dict(), "colour": "blue"})
    assert "BFV" in str(params) and "exact for |x| <=" in str(params)


def test_raw_seal_errors_are_translated():
    from primitives.backends.encrypted.seal_errors import translated

    @translated
    def scaled_op():
        raise ValueError("scale out of bounds")

    with pytest.raises(P.OverflowRiskError, match="select_parameters.*SEAL said: scale out of bounds"):
        scaled_op()
