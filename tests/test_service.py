"""`sealion serve` in a real uvicorn process on 127.0.0.1, driven by RemoteServer and raw HTTP:
exact BFV answers, one context upload reused, restart with persisted contexts, every refusal a
JSON 4xx with the library's message, a full queue answered 503, concurrent clients with
nothing lost, `sealion query` from files."""

import json
import socket
import subprocess
import sys
import threading
import time

import httpx
import keras
import numpy as np
import pytest

import heras
import primitives as P
from heras.deployment import Client, RemoteServer, RemoteServiceError, Server
from heras.layers import Dense, Input, Square
from heras.models import Sequential
from tests.helpers import secret_key_bytes
from tests.test_payload_headers import repack

LIMIT_MB = 4  # a query of this model is ~3 MB, its public context ~2 MB


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Service:
    """`sealion serve` in a subprocess; stopped with SIGTERM (uvicorn's graceful shutdown)."""

    def __init__(self, deploy, log_path, *options):
        self.port, self.log_path = _free_port(), log_path
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "experiments.cli", "serve", str(deploy), "--port", str(self.port),
                   "--workers", "1", "--max-queue", "2", "--max-upload-mb", str(LIMIT_MB), *options]
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log_path.read_text()[-3000:]
            try:
                if httpx.get(self.url + "/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.3)
        raise AssertionError(f"the service did not start in 240 s:\n{log_path.read_text()[-3000:]}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("service")
    keras.utils.set_random_seed(0)
    model = Sequential([Input((8,)), Dense(4), Square(), Dense(3)])
    calibration = np.random.default_rng(0).uniform(0, 1, size=(32, 8))
    model.prepare_encryption("bfv", calibration=calibration, input_bits=4, weight_bits=4)
    heras.deployment.save_prepared(model, folder / "deploy")
    return model, folder


@pytest.fixture(scope="module")
def service(deployment):
    model, folder = deployment
    running = Service(folder / "deploy", folder / "server.log")
    yield running
    if running.process.poll() is None:
        running.stop()


def _batch(seed, size=5):
    return np.random.default_rng(seed).uniform(0, 1, size=(size, 8))


def test_remote_predictions_are_exact_and_reuse_one_context(deployment, service):
    model, folder = deployment
    with RemoteServer(service.url) as remote:
        client = Client(remote.spec())
        assert client.spec.parameters == model.encryption_plan.parameters
        x = _batch(1)
        raw = client.decrypt_raw(remote.run(client.public_context(), client.encrypt(x)))
        np.testing.assert_array_equal(raw, model.predict_discretized(x))        # BFV: bit for bit
        logits = client.predict(remote, _batch(2))
        np.testing.assert_array_equal(logits, model.predict_discretized(_batch(2)) / client.spec.output_scale)
        assert remote.uploads == 1                                                 # keys went up once
        health = remote.health()
        assert health["contexts"] >= 1 and health["queue"]["completed"] >= 2
    stored = list((folder / "deploy" / "contexts").glob("*.ctx"))
    secrets = secret_key_bytes(client.context)
    for path in stored:                                       # what the service keeps: public only
        data = path.read_bytes()
        assert not any(secret in data for secret in secrets)
        assert not P.Context.from_bytes(data).has_secret_key
    with pytest.raises(P.SecretKeyError):
        RemoteServer(service.url).upload_context(client.context)   # refused before anything is sent


def _post(url, path, data, **headers):
    response = httpx.post(url + path, content=data, headers=headers, timeout=120)
    body = response.json()
    assert set(body) >= {"error", "message", "request_id"} and "Traceback" not in response.text
    return response.status_code, body


def _library_message(function, *args):
    with pytest.raises(P.SealionError) as caught:
        function(*args)
    return str(caught.value)


def test_every_refusal_is_json_with_the_library_message(deployment, service):
    model, folder = deployment
    server = Server(folder / "deploy")                   # the library's messages, for comparison
    client, stranger = Client.from_model(model), Client.from_model(model)
    url = service.url
    with RemoteServer(url) as remote:
        identifier = remote.upload_context(client.public_context())
    predict = f"/v1/contexts/{identifier}/predict"

    status, body = _post(url, "/v1/contexts", b"not a context")
    assert (status, body["error"]) == (400, "SerializationError")
    assert body["message"] == _library_message(P.Context.from_bytes, b"not a context")
    query = client.encrypt(_batch(3))
    status, body = _post(url, "/v1/contexts", query)                      # a tensor sent as a context
    assert status == 400 and "hold a 'tensor'" in body["message"]
    private = client.context.serialize(save_secret_key=True)
    status, body = _post(url, "/v1/contexts", private)
    assert (status, body["error"]) == (400, "SecretKeyError")
    assert body["message"] == _library_message(server.load_context, private)
    other = P.Context(P.select_parameters("bfv", depth=1, max_value=2 ** 20, trial=False)).serialize()
    status, body = _post(url, "/v1/contexts", other)
    assert (status, body["error"]) == (409, "ParameterError")
    assert body["message"] == _library_message(server.load_context, other)

    status, body = _post(url, predict, stranger.encrypt(_batch(3)))       # other keys than the context
    assert (status, body["error"]) == (409, "SchemeError")
    status, body = _post(url, predict, P.encrypt(client.context, np.zeros((2, 5), dtype=np.int64)).serialize())
    assert (status, body["error"]) == (400, "ShapeError")
    too_large = P.encrypt(client.context, np.zeros((2, 8), dtype=np.int64), bound=10 ** 5).serialize()
    status, body = _post(url, predict, too_large)
    assert (status, body["error"]) == (400, "OverflowRiskError")
    status, body = _post(url, predict, repack(query, "tensor", batch_size=-5))   # valid checksum
    assert (status, body["error"]) == (400, "SerializationError") and "`batch_size`" in body["message"]
    status, body = _post(url, predict, repack(query, "tensor", bound=["x"] * 8))
    assert status == 400 and "`bound`" in body["message"]
    status, body = _post(url, "/v1/contexts/" + "0" * 64 + "/predict", query)
    assert (status, body["error"]) == (404, "UnknownContext")
    status, body = _post(url, "/v1/contexts/../../etc/predict", query)
    assert status == 404

    oversized = b"\0" * (LIMIT_MB * 1024 ** 2 + 1)
    status, body = _post(url, predict, oversized)                         # declared by Content-Length
    assert (status, body["error"]) == (413, "PayloadTooLarge")
    status, body = _post(url, predict, iter([oversized[:1024 ** 2]] * (LIMIT_MB + 1)))   # chunked
    assert (status, body["error"]) == (413, "PayloadTooLarge")
    with RemoteServer(url) as remote, pytest.raises(RemoteServiceError, match="at most") as caught:
        remote.run(client.public_context(), oversized)                    # refused before sending
    assert caught.value.status == 413

    # one log line per request, carrying the id the client saw
    response = httpx.get(url + "/v1/contexts/" + "1" * 64)
    assert response.status_code == 404
    request_id = response.headers["x-request-id"]
    time.sleep(0.2)
    lines = [line for line in service.log_path.read_text().splitlines() if request_id in line]
    assert len(lines) == 1 and " 404 " in lines[0]


def _held_upload(url, path, data):
    """Send the headers and half the body, then hold: the request is admitted, not finished."""
    port = int(url.rsplit(":", 1)[1])
    connection = socket.create_connection(("127.0.0.1", port), timeout=120)
    connection.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
                       "Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n".encode())
    connection.sendall(data[:len(data) // 2])
    return connection


def _finish(connection, data):
    connection.sendall(data[len(data) // 2:])
    received = b""
    while chunk := connection.recv(1 << 20):
        received += chunk
    connection.close()
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_full_queue_answers_503_and_loses_no_admitted_query(deployment, service):
    model, _ = deployment
    client = Client.from_model(model)
    with RemoteServer(service.url) as remote:
        identifier = remote.upload_context(client.public_context())
    path = f"/v1/contexts/{identifier}/predict"
    batches = [_batch(10 + i) for i in range(2)]
    queries = [client.encrypt(x) for x in batches]
    held = [_held_upload(service.url, path, q) for q in queries]          # max_queue = 2: both admitted
    deadline = time.monotonic() + 30
    while httpx.get(service.url + "/v1/health").json()["queue"]["waiting"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    response = httpx.post(service.url + path, content=queries[0], timeout=60)
    assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "QueueFull"
    assert httpx.get(service.url + "/v1/health").status_code == 200     # the service still answers
    metrics = httpx.get(service.url + "/metrics").text
    assert "sealion_queue_waiting 2.0" in metrics
    for connection, query, x in zip(held, queries, batches):
        status, body = _finish(connection, query)
        assert status == 200
        np.testing.assert_array_equal(client.decrypt_raw(body), model.predict_discretized(x))


def test_concurrent_clients_all_get_their_exact_answers(deployment, service):
    model, _ = deployment
    results, errors = {}, []

    def one_client(index):
        try:
            with RemoteServer(service.url, retries=400, max_wait=0.3) as remote:
                client = Client.from_model(model)
                for round_ in range(2):
                    x = _batch(100 + 10 * index + round_)
                    results[index, round_] = (client.decrypt_raw(remote.run(client.public_context(),
                                                                            client.encrypt(x))), x)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    assert len(results) == 8
    for raw, x in results.values():
        np.testing.assert_array_equal(raw, model.predict_discretized(x))


def test_metrics_openapi_and_spec(deployment, service):
    _, folder = deployment
    assert httpx.get(service.url + "/v1/spec").json() == json.loads((folder / "deploy" / "client.json").read_text())
    metrics = httpx.get(service.url + "/metrics").text
    for name in ("sealion_requests_total", "sealion_request_errors_total", "sealion_queue_waiting",
                 "sealion_forward_seconds_count", "sealion_contexts"):
        assert name in metrics
    assert 'endpoint="/v1/contexts/{context_id}/predict",method="POST",status="200"' in metrics
    schema = httpx.get(service.url + "/openapi.json").json()
    assert {"/v1/health", "/v1/spec", "/v1/contexts", "/v1/contexts/{context_id}",
            "/v1/contexts/{context_id}/predict"} <= set(schema["paths"])
    assert httpx.get(service.url + "/docs").status_code == 200


def test_sealion_query_command_and_restart_keep_contexts(deployment, service, tmp_path):
    """`sealion query` from files; then the service restarts and still holds the context."""
    from experiments.cli import main
    model, folder = deployment
    x = _batch(7)
    np.save(tmp_path / "x.npy", x)
    argv = ["query", service.url, "--input", str(tmp_path / "x.npy"), "--keys", str(tmp_path / "client.keys"),
            "--raw", "--output", str(tmp_path / "raw.npy")]
    assert main(argv) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "raw.npy", allow_pickle=True), model.predict_discretized(x))
    assert main(argv) == 2                                      # never overwrites an earlier answer

    service.stop()
    restarted = Service(folder / "deploy", folder / "server2.log")
    try:
        client = Client.load_keys(folder / "deploy", tmp_path / "client.keys")
        with RemoteServer(restarted.url) as remote:
            logits = client.predict(remote, x)
            assert remote.uploads == 0                          # the restarted service had the keys
        np.testing.assert_array_equal(logits, model.predict_discretized(x) / client.spec.output_scale)
    finally:
        restarted.stop()
