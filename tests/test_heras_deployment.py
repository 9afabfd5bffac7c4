"""Developer -> server -> client with a prepared heras model, the server in its own process
exchanging only files; nothing the server holds contains the secret key."""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import heras
import primitives as P
from heras.layers import AveragePooling2D, Conv2D, Dense, Flatten, Input, Square
from heras.models import Sequential
from tests.helpers import secret_key_bytes

SERVER = textwrap.dedent("""
    import sys
    import primitives as P
    from heras.deployment import load_prepared
    deploy, exchange = sys.argv[1], sys.argv[2]
    model = load_prepared(deploy)
    context = P.Context.load(exchange + "/public.ctx")
    query = P.EncryptedTensor.load(exchange + "/query.tensor", context)
    model.predict(query).save(exchange + "/answer.tensor")
""")


@pytest.fixture
def prepared(tmp_path, rng):
    keras.utils.set_random_seed(0)
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3), Square(), AveragePooling2D(2), Flatten(), Dense(3)])
    x = rng.uniform(0, 1, size=(4, 6, 6, 1))
    model.prepare_encryption("bfv", calibration=x, input_bits=4, weight_bits=4)
    heras.deployment.save_prepared(model, tmp_path / "deploy")
    return model, x, tmp_path


def test_server_process_runs_the_prepared_model_on_public_material(prepared):
    model, x, tmp_path = prepared
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    client_model = heras.deployment.load_prepared(tmp_path / "deploy")   # the client quantises with it
    client = P.Context(client_model.encryption_plan.parameters)
    client.save(exchange / "public.ctx")
    client_model.encrypt_inputs(client, x).save(exchange / "query.tensor")
    run = subprocess.run([sys.executable, "-c", SERVER, str(tmp_path / "deploy"), str(exchange)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = P.EncryptedTensor.load(exchange / "answer.tensor", client)
    np.testing.assert_array_equal(P.decrypt(client, answer), model.predict_discretized(x))
    keys = secret_key_bytes(client)
    for folder in (exchange, tmp_path / "deploy"):
        for path in folder.iterdir():
            assert not any(key in path.read_bytes() for key in keys), path


def test_prepared_folder_refuses_overwrite_corruption_and_tampering(prepared):
    model, _, tmp_path = prepared
    deploy = tmp_path / "deploy"
    with pytest.raises(FileExistsError, match="overwrite=True"):
        heras.deployment.save_prepared(model, deploy)
    (deploy / "plan.json").write_text("{ not json")
    with pytest.raises(P.SerializationError, match="corrupted"):
        heras.deployment.load_prepared(deploy)
    heras.deployment.save_prepared(model, deploy, overwrite=True)
    (deploy / "model.keras").write_bytes((deploy / "model.keras").read_bytes() + b"x")
    with pytest.raises(P.SerializationError, match="checksum"):
        heras.deployment.load_prepared(deploy)
    with pytest.raises(P.SerializationError, match="missing"):
        heras.deployment.load_prepared(tmp_path / "nowhere")
