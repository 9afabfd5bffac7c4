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

# Each role in its own process; they exchange files only.
CLIENT_ENCRYPTS = textwrap.dedent("""
    import sys
    import numpy as np
    from heras.deployment import Client
    deploy, exchange = sys.argv[1], sys.argv[2]
    client = Client.from_folder(deploy)             # reads client.json only
    client.save_keys(exchange + "/client.keys")      # stays with the client
    open(exchange + "/public.ctx", "wb").write(client.public_context())
    open(exchange + "/query.tensor", "wb").write(client.encrypt(np.load(exchange + "/x.npy")))
""")
SERVER = textwrap.dedent("""
    import sys
    from heras.deployment import Server
    deploy, exchange = sys.argv[1], sys.argv[2]
    Server(deploy).run_files(exchange + "/public.ctx", exchange + "/query.tensor", exchange + "/answer.tensor")
""")
CLIENT_DECRYPTS = textwrap.dedent("""
    import sys
    import numpy as np
    from heras.deployment import Client
    deploy, exchange = sys.argv[1], sys.argv[2]
    client = Client.load_keys(deploy, exchange + "/client.keys")
    np.save(exchange + "/raw.npy", client.decrypt_raw(open(exchange + "/answer.tensor", "rb").read()))
    np.save(exchange + "/logits.npy", client.decrypt(open(exchange + "/answer.tensor", "rb").read()))
""")


def _run(script, *args):
    run = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.fixture
def prepared(tmp_path, rng):
    keras.utils.set_random_seed(0)
    model = Sequential([Input((6, 6, 1)), Conv2D(2, 3), Square(), AveragePooling2D(2), Flatten(), Dense(3)])
    x = rng.uniform(0, 1, size=(4, 6, 6, 1))
    model.prepare_encryption("bfv", calibration=x, input_bits=4, weight_bits=4)
    heras.deployment.save_prepared(model, tmp_path / "deploy")
    return model, x, tmp_path


def test_client_and_server_processes_exchange_only_files(prepared):
    """Developer -> client process -> server process -> client process; the server's output is
    the discretised model's, bit for bit, and nothing the server holds contains the secret key."""
    model, x, tmp_path = prepared
    deploy, server_side = tmp_path / "deploy", tmp_path / "exchange"
    server_side.mkdir()
    np.save(server_side / "x.npy", x)
    _run(CLIENT_ENCRYPTS, deploy, server_side)
    _run(SERVER, deploy, server_side)
    _run(CLIENT_DECRYPTS, deploy, server_side)
    raw = np.load(server_side / "raw.npy", allow_pickle=True)
    np.testing.assert_array_equal(raw, model.predict_discretized(x))
    np.testing.assert_allclose(np.load(server_side / "logits.npy"),
                               raw / model.encryption_plan.output_scale)
    client_keys = P.Context.load(server_side / "client.keys")
    keys = secret_key_bytes(client_keys)
    server_files = [deploy / name for name in ("model.keras", "plan.json", "client.json")] + [
        server_side / name for name in ("public.ctx", "query.tensor", "answer.tensor")]
    for path in server_files:
        assert not any(key in path.read_bytes() for key in keys), path
    assert not P.Context.load(server_side / "public.ctx").has_secret_key
    # the client's own key file does hold it: the check above can find a key where there is one
    assert any(key in (server_side / "client.keys").read_bytes() for key in keys)


def test_client_spec_holds_no_weights_and_quantises_like_the_plan(prepared):
    model, x, tmp_path = prepared
    spec = heras.deployment.ClientSpec.load(tmp_path / "deploy")
    np.testing.assert_array_equal(spec.quantize(x), model.encryption_plan.quantize(x))
    assert spec.parameters == model.encryption_plan.parameters and spec.input_shape == (6, 6, 1)
    text = (tmp_path / "deploy" / "client.json").read_text()
    assert "encryption_weights" not in text and "kernel" not in text
    with pytest.raises(P.ShapeError, match=r"shape \(batch, 6, 6, 1\)"):
        spec.quantize(x.reshape(len(x), -1))


def test_server_refuses_secret_keys_foreign_parameters_and_wrong_shapes(prepared, rng):
    model, x, tmp_path = prepared
    server = heras.deployment.Server(tmp_path / "deploy")
    client = heras.deployment.Client.from_folder(tmp_path / "deploy")
    with pytest.raises(P.SecretKeyError, match="public_context"):
        server.run(client.context.serialize(save_secret_key=True), client.encrypt(x))
    with pytest.raises(P.SecretKeyError, match="public_context"):
        server.run(client.context, client.encrypt(x))
    other = P.Context(P.select_parameters("bfv", depth=1, max_value=2 ** 20))
    with pytest.raises(P.ParameterError, match="client.json"):
        server.run(other.public().serialize(), client.encrypt(x))
    with pytest.raises(P.ParameterError, match="client.json"):
        server.run(other.public(), client.encrypt(x))
    wrong_shape = P.encrypt(client.context, rng.integers(0, 5, size=(3, 5, 5, 1)), bound=5).serialize()
    with pytest.raises(P.ShapeError, match="expects inputs of per-sample shape"):
        server.run(client.public_context(), wrong_shape)
    too_large = P.encrypt(client.context, rng.integers(0, 5, size=(3, 6, 6, 1)),
                          bound=model.encryption_plan.input_bound + 1).serialize()
    with pytest.raises(P.OverflowRiskError, match="Client.encrypt"):
        server.run(client.public_context(), too_large)
    answer = server.run(client.public_context(), client.encrypt(x))
    np.testing.assert_array_equal(client.decrypt_raw(answer), model.predict_discretized(x))
    with pytest.raises(P.SecretKeyError):  # a public context cannot act as the client
        heras.deployment.Client.from_folder(tmp_path / "deploy", context=client.context.public())
    (tmp_path / "answer").write_bytes(b"earlier")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        server.run_files(tmp_path / "a", tmp_path / "b", tmp_path / "answer")
    assert (tmp_path / "answer").read_bytes() == b"earlier"


def test_keys_are_never_overwritten(prepared):
    _, _, tmp_path = prepared
    client = heras.deployment.Client.from_folder(tmp_path / "deploy")
    client.save_keys(tmp_path / "keys")
    before = (tmp_path / "keys").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        heras.deployment.Client.from_folder(tmp_path / "deploy").save_keys(tmp_path / "keys")
    assert (tmp_path / "keys").read_bytes() == before


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
    (deploy / "client.json").write_text("{ not json")
    with pytest.raises(P.SerializationError, match="corrupted"):
        heras.deployment.ClientSpec.load(deploy)


def test_prepared_folder_from_other_library_versions_is_refused(prepared):
    import json
    model, x, tmp_path = prepared
    plan_path = tmp_path / "deploy" / "plan.json"
    record = json.loads(plan_path.read_text())
    record["versions"]["tenseal"] = "0.0.1"
    plan_path.write_text(json.dumps(record))
    with pytest.raises(P.SerializationError, match=r"tenseal 0.0.1 \(installed: .*allow_version_mismatch"):
        heras.deployment.load_prepared(tmp_path / "deploy")
    loaded = heras.deployment.load_prepared(tmp_path / "deploy", allow_version_mismatch=True)
    np.testing.assert_array_equal(loaded.predict_discretized(x), model.predict_discretized(x))
