"""Encrypted training with the data owner in another process: only bytes cross, the server never
holds the secret key, and the weights the owner decrypts equal the same SGD in plaintext."""

import multiprocessing

import numpy as np
import pytest

import primitives as P
from heras.models import encrypted_training as ET
from primitives.backends.encrypted.training import EncryptedMLP, PackedTrainingTensor
from tests.test_encrypted_training import TOLERANCE, tiny_model

EPOCHS, BATCH, RATE = 2, 8, 0.3


def tiny_data():
    rng = np.random.default_rng(5)
    return rng.normal(size=(12, 3)), rng.integers(0, 2, size=12)


def data_owner(connection):
    """The data owner's process: makes the keys, sends public material and encrypted data, answers
    refresh requests, then decrypts the trained weights and reports their error."""
    from primitives.backends.encrypted.refresh import KeyHolder
    x, y = tiny_data()
    model = tiny_model()
    plan = ET.training_plan(model, BATCH, samples=len(x), epochs=EPOCHS, trial=False)
    context = P.Context(plan.parameters)
    enc_x, enc_y = ET.encrypt_training_data(model, context, x, y, BATCH)
    for payload in (context.public().serialize(), enc_x.serialize(), enc_y.serialize()):
        connection.send_bytes(payload)
    holder, refreshes = KeyHolder(context), 0
    while (request := connection.recv_bytes()) != b"done":
        connection.send_bytes(holder(request))
        refreshes += 1
    trained = EncryptedMLP.from_bytes(connection.recv_bytes(), context).decrypt(context)
    reference, _ = ET.plaintext_fit(tiny_model(), x, y, epochs=EPOCHS, batch_size=BATCH, learning_rate=RATE)
    connection.send({"refreshes": refreshes, "error": float(trained.max_relative_error(reference))})


def test_the_server_trains_on_bytes_and_the_owner_alone_decrypts():
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing shared but the pipe
    server_end, owner_end = spawn.Pipe()
    owner = spawn.Process(target=data_owner, args=(owner_end,), daemon=True)
    owner.start()
    try:
        public = P.Context.from_bytes(server_end.recv_bytes())
        assert not public.has_secret_key
        with pytest.raises(Exception, match="secret key"):
            public.require_secret_key("decrypt")
        enc_x = PackedTrainingTensor.from_bytes(server_end.recv_bytes(), public)
        enc_y = PackedTrainingTensor.from_bytes(server_end.recv_bytes(), public)
        assert (enc_x.batch_size, enc_x.shape, enc_y.shape) == (12, (3,), (2,))

        sent = []

        def key_holder(request):  # the server's side of a refresh: bytes out, bytes back
            sent.append(request)
            server_end.send_bytes(request)
            return server_end.recv_bytes()

        model = tiny_model()
        history = model.fit(enc_x, enc_y, epochs=EPOCHS, batch_size=BATCH, learning_rate=RATE,
                            key_holder=key_holder, verbose=0, seed=1)
        server_end.send_bytes(b"done")
        server_end.send_bytes(model.encrypted_weights.serialize())
        report = server_end.recv()
    finally:
        owner.join(timeout=120)
    assert owner.exitcode == 0
    assert history["refreshes"] == report["refreshes"] == len(sent) > 0
    assert report["error"] < TOLERANCE, report
    assert not model.encrypted_weights.context.has_secret_key


def test_training_bytes_are_checked_and_kept_apart_from_inference_tensors():
    x, y = tiny_data()
    model = tiny_model()
    plan = ET.training_plan(model, BATCH, samples=len(x), epochs=1, trial=False)
    context = P.Context(plan.parameters)
    enc_x, _ = ET.encrypt_training_data(model, context, x, y, BATCH)
    data = enc_x.serialize()
    again = PackedTrainingTensor.from_bytes(data, context)
    np.testing.assert_allclose(again.decrypt_samples(context), x, atol=1e-6)
    assert again.counts == [8, 4] and again.layout.hidden_units == enc_x.layout.hidden_units
    with pytest.raises(P.SerializationError, match="expected a tensor|hold a 'training_tensor'|training_tensor"):
        P.EncryptedTensor.from_bytes(data, context)
    other = P.Context(plan.parameters)
    with pytest.raises(P.SchemeError, match="other keys"):
        PackedTrainingTensor.from_bytes(data, other)
    with pytest.raises(P.SerializationError, match="checksum|corrupted"):
        PackedTrainingTensor.from_bytes(data[:-10] + bytes(10), context)
