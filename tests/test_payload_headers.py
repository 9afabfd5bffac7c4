"""Every field of a serialised context or tensor header is type- and range-checked: bytes
re-packed with one altered field under a valid checksum are refused with a SerializationError
that names the field (never a bare int() error, never a quietly wrong tensor)."""

import json
import struct

import numpy as np
import pytest

import primitives as P
from primitives.serialization import MAGIC, unpack


def repack(data, kind, **changes):
    """``data`` with header fields replaced (a value of ``DELETE`` removes the field); the
    blobs and their SHA-256 digest are kept, so only the header check can catch it."""
    header, blobs = unpack(data, kind)
    for name, value in changes.items():
        if value is DELETE:
            header.pop(name)
        else:
            header[name] = value
    encoded = json.dumps(header).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(encoded)), encoded, *blobs])


DELETE = object()


@pytest.fixture(scope="module")
def tensor_bytes(bfv_context):
    return P.encrypt(bfv_context, np.arange(6).reshape(3, 2), bound=10).serialize()


@pytest.fixture(scope="module")
def public_bytes(bfv_context):
    return bfv_context.serialize()


def test_untouched_bytes_round_trip(bfv_context, tensor_bytes):
    tensor = P.EncryptedTensor.from_bytes(tensor_bytes, bfv_context)
    assert tensor.batch_size == 3 and tensor.shape == (2,)
    np.testing.assert_array_equal(P.decrypt(bfv_context, tensor), np.arange(6).reshape(3, 2))


# field, altered value, words the error must contain
TENSOR_CASES = [
    ("batch_size", -1, "`batch_size`"),
    ("batch_size", 0, "`batch_size`"),
    ("batch_size", "3", "`batch_size`"),
    ("batch_size", True, "`batch_size`"),
    ("batch_size", 5000, "`layout`"),              # needs two ciphertext groups at 4096 slots
    ("bound", ["abc", "10"], "`bound`"),           # was: invalid literal for int()
    ("bound", ["-1", "10"], "`bound`"),
    ("bound", [10, 10], "`bound`"),
    ("bound", ["10"], "`bound`"),
    ("bound", ["1" + "0" * 30, "10"], "`bound`"),  # past the largest exact value
    ("bound", "10", "`bound`"),
    ("shape", [-2], "`shape`"),
    ("shape", [3], "`layout`"),
    ("shape", "2", "`shape`"),
    ("shape", [2.0], "`shape`"),
    ("layout", [1, 1], "`layout`"),
    ("layout", [3, 1, 2], "`layout`"),
    ("layout", [1, 1, -2], "`layout`"),
    ("layout", None, "`layout`"),
    ("noise_used_bits", [-5.0], "`noise_used_bits`"),
    ("noise_used_bits", ["x"], "`noise_used_bits`"),
    ("noise_used_bits", [0.0, 0.0, 0.0], "`noise_used_bits`"),
    ("noise_used_bits", [float("nan")], "`noise_used_bits`"),
    ("noise_used_bits", [1e9], "`noise_used_bits`"),
    ("depth_used", -1, "`depth_used`"),
    ("depth_used", "0", "`depth_used`"),
    ("depth_used", 10 ** 6, "`depth_used`"),
    ("scheme", "ckks", "`scheme`"),
    ("scheme", DELETE, "`scheme`"),
    ("blob_sizes", "big", "`blob_sizes`"),
    ("blob_sizes", [-1], "`blob_sizes`"),
    ("sha256", 12, "`sha256`"),
    ("versions", ["sealion"], "`versions`"),
]


@pytest.mark.parametrize("name, value, words", TENSOR_CASES,
                         ids=[f"{c[0]}={c[1]!r}"[:40] for c in TENSOR_CASES])
def test_tensor_header_fields_are_checked(bfv_context, tensor_bytes, name, value, words):
    noise = unpack(tensor_bytes, "tensor")[0]["noise_used_bits"]
    if name == "noise_used_bits" and len(value) == 1:
        value = value * len(noise)  # one bad value per component, the length itself is right
    with pytest.raises(P.SerializationError, match=words):
        P.EncryptedTensor.from_bytes(repack(tensor_bytes, "tensor", **{name: value}), bfv_context)


def test_tensor_under_other_keys_or_parameters_is_a_scheme_error(bfv_context, tensor_bytes):
    for changes in ({"key_id": "0" * 32}, {"key_id": 7}, {"parameters": {"scheme": "bfv"}}):
        with pytest.raises(P.SchemeError, match="other keys or parameters"):
            P.EncryptedTensor.from_bytes(repack(tensor_bytes, "tensor", **changes), bfv_context)


def test_kind_and_format_version_are_checked(tensor_bytes, public_bytes, bfv_context):
    with pytest.raises(P.SerializationError, match="hold a 'tensor'"):
        P.Context.from_bytes(tensor_bytes)
    with pytest.raises(P.SerializationError, match="format version"):
        P.EncryptedTensor.from_bytes(repack(tensor_bytes, "tensor", format_version="1"), bfv_context)
    with pytest.raises(P.SerializationError, match="not a JSON object"):
        body = b"[1, 2]"
        P.Context.from_bytes(MAGIC + struct.pack("<I", len(body)) + body)
    with pytest.raises(P.SerializationError, match="truncated"):
        P.Context.from_bytes(MAGIC + struct.pack("<I", 10 ** 6) + b"{}")


CONTEXT_CASES = [
    ("has_secret_key", "yes", "`has_secret_key`"),
    ("has_secret_key", 1, "`has_secret_key`"),
    ("key_id", 5, "`key_id`"),
    ("key_id", "../../etc", "`key_id`"),
    ("parameters", "bfv", "`parameters`"),
    ("parameters", DELETE, "`parameters`"),
    ("parameters", {"poly_modulus_degree": "4096"}, "`parameters`"),
    ("blob_sizes", [1.5], "`blob_sizes`"),
    ("sha256", "g" * 64, "`sha256`"),
]


@pytest.mark.parametrize("name, value, words", CONTEXT_CASES,
                         ids=[f"{c[0]}={c[1]!r}"[:40] for c in CONTEXT_CASES])
def test_context_header_fields_are_checked(public_bytes, name, value, words):
    with pytest.raises(P.SerializationError, match=words):
        P.Context.from_bytes(repack(public_bytes, "context", **{name: value}))


@pytest.mark.parametrize("field, value", [("poly_modulus_degree", "4096"), ("coeff_mod_bit_sizes", "abc"),
                                          ("coeff_mod_bit_sizes", ["x", 36]), ("plain_moduli", ["t"]),
                                          ("depth", "one"), ("depth", -1), ("max_value", "9"), ("linear_bits", "x"),
                                          ("notes", "text"), ("poly_modulus_degree", 1000)])
def test_context_parameter_fields_are_checked(public_bytes, field, value):
    parameters = dict(unpack(public_bytes, "context")[0]["parameters"], **{field: value})
    with pytest.raises(P.SerializationError, match="`parameters` are invalid"):
        P.Context.from_bytes(repack(public_bytes, "context", parameters=parameters))


def test_claiming_a_secret_key_it_does_not_hold_is_refused(public_bytes):
    with pytest.raises(P.SerializationError, match="keys"):
        P.Context.from_bytes(repack(public_bytes, "context", has_secret_key=True))
