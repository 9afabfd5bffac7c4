"""The Ray executor (heras.execution): the same integers as the local run, retries, no secret key.

One local Ray instance (2 CPUs, no dashboard) serves the whole module and is shut down at the
end. The batch: BFV at n = 4096 with 3 CRT primes and 3 ciphertext groups (8,229 samples),
so 9 (group, prime) work units.
"""

import json
import os
import signal
import threading
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import primitives as P
from experiments.cli import main
from heras import execution
from heras.execution import ray_executor
from heras.execution.ray_executor import RayExecutor
from heras.layers import Dense, Input, Square
from heras.models import Sequential
from primitives import work_units
from tests.helpers import batching_primes

ray = pytest.importorskip("ray", reason='the Ray executor needs pip install -e ".[test]" (or ".[ray]")')

SAMPLES = 2 * 4096 + 37   # 3 ciphertext groups at n = 4096
QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


def _model(hidden, n=4096, samples=SAMPLES):
    """A prepared 8 -> hidden -> square -> 3 network on 3 CRT primes (the selection would take
    one prime at n = 8192) and inputs for it."""
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, size=(samples, 8))
    keras.utils.set_random_seed(0)
    model = Sequential([Input((8,)), Dense(hidden), Square(), Dense(3)])
    model.prepare_encryption("bfv", calibration=x, input_bits=4, weight_bits=4)
    coefficients = (36, 36, 37) if n == 4096 else (58, 58, 58, 44)
    model.encryption_plan.parameters = P.Parameters("bfv", n, coefficients, batching_primes(n, [20, 20, 20]), depth=1)
    return model, x


@pytest.fixture(scope="module")
def batch():
    """(model, inputs, client context, public query, output of the local executor)."""
    model, x = _model(6)
    client = P.Context(model.encryption_plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    assert query.data.shape[:2] == (3, 3)   # 3 primes x 3 groups
    local = model.encrypted_forward(query)  # the default: this machine's process pool
    return model, x, client, query, local


@pytest.fixture(scope="module")
def ray_instance(batch):  # after `batch`: the local run forks before Ray's threads exist
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _same(a, b, client):
    np.testing.assert_array_equal(P.decrypt(client, a), P.decrypt(client, b))
    assert a.data.shape == b.data.shape and a.batch_size == b.batch_size
    assert a.bound.tolist() == b.bound.tolist() and a.depth_used == b.depth_used
    np.testing.assert_array_equal(a.noise_used_bits, b.noise_used_bits)


def test_work_units_cover_the_batch_and_stitch_back(batch):
    model, x, client, query, local = batch
    units = work_units.split_units(query)
    assert [key for key, _ in units] == [(g, j) for j in range(3) for g in range(3)]
    assert sum(unit.batch_size for (_, j), unit in units if j == 0) == SAMPLES
    stitched = work_units.stitch_units({key: unit for key, unit in units}, query)
    _same(stitched, query, client)
    with pytest.raises(ValueError, match=r"No result for the work units \[\(1, 2\)\]"):
        work_units.stitch_units({key: unit for key, unit in units if key != (1, 2)}, query)


def test_ray_gives_the_same_integers_as_the_local_run(batch, ray_instance):
    model, x, client, query, local = batch
    executor = RayExecutor()
    out = model.encrypted_forward(query, executor=executor)
    _same(out, local, client)
    np.testing.assert_array_equal(P.decrypt(client, out), model.predict_discretized(x))
    run = executor.last_run
    assert run["units"] == 9 and run["unit_input_bytes"] > 0 and run["unit_output_bytes"] > 0
    assert run["model_bytes"] > 0 and run["context_bytes"] > 0
    shared = dict(executor._shared)
    again = model.encrypted_forward(query, executor=executor)   # model and keys are not put again
    assert executor._shared.keys() == shared.keys()
    assert all(executor._shared[k][1] == shared[k][1] for k in shared)
    _same(again, local, client)
    executor.close()
    assert ray.is_initialized()   # it did not start this instance, so it leaves it running


def test_evaluate_with_the_ray_executor(batch, ray_instance):
    model, x, client, query, local = batch
    y = model.predict_discretized(x[:300]).argmax(axis=-1)
    result = model.evaluate(x[:300], y, encrypted=True, executor=RayExecutor())
    assert result["exact"] is True and result["accuracy"] == 1.0 and result["samples"] == 300


def test_nothing_sent_to_ray_holds_the_secret_key(batch, ray_instance, monkeypatch):
    """Even when the query was encrypted under the client's private context."""
    model, x, client, query, local = batch
    private_query = model.encrypt_inputs(client, x[:50])
    sent = []
    original_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kw: sent.append(value) or original_put(value, **kw))
    out = model.encrypted_forward(private_query, executor=RayExecutor())
    np.testing.assert_array_equal(P.decrypt(client, out), model.predict_discretized(x[:50]))
    payloads = []
    for value in sent:
        if isinstance(value, dict):           # the prepared model's files
            payloads += list(value.values())
        elif isinstance(value, tuple):        # a unit: ciphertext coefficients and their header
            assert value[0] == "coefficients" and value[2].dtype == np.uint64 and value[2].shape[1] == 2
            payloads += [json.dumps(value[1]).encode(), value[2].tobytes()]
        else:                                 # the public context
            assert not P.Context.from_bytes(value).has_secret_key
            payloads.append(value)
    assert len(sent) == 3 + 2   # 3 units (3 primes x 1 group), the public context, the model's files
    io = P.serialization.SealObjectIO()
    secrets = [io.to_bytes(component.secret_key) for component in client.components]
    assert all(secret in client.serialize(save_secret_key=True) for secret in secrets)   # the check can see it
    assert not any(secret in payload for secret in secrets for payload in payloads)


def _descendants(root):
    """Process ids below ``root`` (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _kill_first_running_unit(stop, killed):
    """SIGKILL the first Ray worker of this test's instance seen running a work unit."""
    while not stop.is_set() and not killed:
        for pid in _descendants(os.getpid()):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    title = cmdline.read()
            except OSError:
                continue
            if title.startswith(b"ray::_run_unit"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
        time.sleep(0.002)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the Ray workers through /proc")
def test_a_worker_killed_mid_run_is_retried_and_the_result_is_exact(ray_instance):
    model, x = _model(32, n=8192, samples=9000)   # 6 units of ~1 s: a worker is caught inside one
    client = P.Context(model.encryption_plan.parameters)
    query = model.encrypt_inputs(client.public(), x)
    executor = RayExecutor(max_retries=2)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_running_unit, args=(stop, killed))
    killer.start()
    try:
        out = model.encrypted_forward(query, executor=executor)
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen running a unit"
    assert killed[0] not in _descendants(os.getpid())   # it is gone; Ray started another worker
    np.testing.assert_array_equal(P.decrypt(client, out), model.predict_discretized(x))
    assert executor.last_run["units"] == 6


def test_computation_errors_are_not_retried_and_keep_their_type(batch, ray_instance):
    model, x, client, query, local = batch
    huge = model.encrypt_inputs(client.public(), x[:4])
    huge.bound = np.full_like(huge.bound, 2 ** 40)   # claims values the proven bounds cannot hold
    with pytest.raises(P.OverflowRiskError):
        model.encrypted_forward(huge, executor=RayExecutor())


def test_executor_names_and_errors(monkeypatch):
    assert isinstance(execution.get_executor(), execution.LocalExecutor)
    assert isinstance(execution.get_executor("local"), execution.LocalExecutor)
    assert isinstance(execution.get_executor("RAY", address="auto"), RayExecutor)
    with pytest.raises(ValueError, match="Expected one of: local, ray"):
        execution.get_executor("spark")
    with pytest.raises(ValueError, match="only applies to the Ray executor"):
        execution.get_executor("local", address="auto")
    with pytest.raises(TypeError, match="forward"):
        execution.get_executor(42)
    with pytest.raises(ValueError, match="num_cpus only applies to a local Ray instance"):
        RayExecutor(address="auto", num_cpus=2)
    with pytest.raises(ValueError, match="max_retries"):
        RayExecutor(max_retries=-1)
    monkeypatch.setitem(__import__("sys").modules, "ray", None)   # as if Ray were not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[ray\]"'):
        ray_executor.import_ray()


def test_sealion_run_with_the_ray_executor(ray_instance, tmp_path, capsys):
    assert main(["run", str(QUICKSTART), "--output", str(tmp_path / "out"), "--set", "training.epochs=2",
                 "--executor", "ray"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["exact"] is True and results["encrypted_samples"] == 360
    assert ray.is_initialized()   # the run joined this instance and left it running
    with pytest.raises(SystemExit):
        main(["run", str(QUICKSTART), "--executor", "spark"])
    assert "invalid choice: 'spark'" in capsys.readouterr().err
