"""What reaches a server is public material only, and it cannot decrypt."""

import os

import numpy as np
import pytest

import primitives as P
from primitives import Context, EncryptedTensor, decrypt, encrypt
from tests.helpers import secret_key_bytes


@pytest.mark.parametrize("name", ["bfv_context", "ckks_context"])
def test_public_context_cannot_decrypt(name, request):
    client = request.getfixturevalue(name)
    server = client.public()
    assert client.has_secret_key and not server.has_secret_key
    tensor = encrypt(server, np.ones((2, 3), dtype=np.int64))  # a server can encrypt
    with pytest.raises(P.SecretKeyError, match="public context"):
        decrypt(server, tensor)
    np.testing.assert_allclose(decrypt(client, tensor), np.ones((2, 3)), atol=1e-3)


@pytest.mark.parametrize("name", ["bfv_context", "ckks_context"])
def test_serialized_public_material_holds_no_secret_key(name, request):
    client = request.getfixturevalue(name)
    keys = secret_key_bytes(client)
    private_blob = client.serialize(save_secret_key=True)
    assert all(key in private_blob for key in keys)          # the check can see a key when present
    public_blob = client.serialize()                          # the default leaves it out
    assert not any(key in public_blob for key in keys)
    tensor = encrypt(client, np.zeros((1, 2), dtype=np.int64))
    assert not any(key in tensor.serialize() for key in keys)
    assert not Context.from_bytes(public_blob).has_secret_key


def test_private_context_round_trips_through_a_file(bfv_context, tmp_path):
    path = tmp_path / "client.ctx"
    bfv_context.save(path, save_secret_key=True)
    restored = Context.load(path)
    assert restored.has_secret_key and restored.key_id == bfv_context.key_id
    tensor = encrypt(bfv_context, np.array([[5, -6]]))
    np.testing.assert_array_equal(decrypt(restored, tensor), [[5, -6]])


def test_public_context_refuses_to_save_a_secret_key(bfv_context, tmp_path):
    with pytest.raises(P.SecretKeyError):
        bfv_context.public().save(tmp_path / "x.ctx", save_secret_key=True)
    assert not os.path.exists(tmp_path / "x.ctx")


def test_tensor_from_other_keys_is_refused(bfv_context):
    other = Context(bfv_context.parameters)
    tensor = encrypt(other, np.array([[1]]))
    with pytest.raises(PermissionError):
        decrypt(bfv_context, tensor)
    with pytest.raises(P.SchemeError, match="other keys"):
        EncryptedTensor.from_bytes(tensor.serialize(), bfv_context)
