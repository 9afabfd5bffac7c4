"""`RayExecutor`: an encrypted forward pass as (ciphertext group, CRT prime) tasks on Ray.

One machine serves one batch at a time; a cluster serves many. A BFV batch with G ciphertext
groups and k plaintext primes is G * k independent computations
(:mod:`primitives.work_units`); each becomes a Ray task, on a local Ray instance or on a
cluster (``address``). What moves, per forward pass:

- once per executor (the object store keeps it for later batches): the prepared model
  (``heras.deployment.save_prepared``'s files: Keras model, integer weights, plan) and the
  client's **public** context (public and relinearisation keys of every prime; the secret key
  is never serialised: ``Context.serialize`` leaves it out, and a worker refuses a context
  that holds one);
- per task: the unit's input ciphertexts (one per input feature) in, its output ciphertexts
  (one per output feature) out, as raw coefficient arrays (:func:`primitives.work_units.pack`:
  copied at memory speed, every coefficient checked against its prime on arrival; SEAL's
  compressed ``save`` costs ~6 ms per ciphertext at n = 8192 and saves ~3%).

A worker keeps the last two models and contexts it loaded (by digest and key id), so a
long-lived worker loads each once; beyond that it holds one unit at a time: its input, the
intermediate ciphertexts of one prime of one group (streamed layers bound them, see
:mod:`heras.models.streaming`) and its output. The driver keeps at most ``max_in_flight``
units' inputs in the object store at once.

A worker that dies mid-task (killed, out of memory, node lost) is retried by Ray up to
``max_retries`` times; the unit is a pure function of its inputs, so a retry computes the same
ciphertexts. Errors raised by the computation (an overflow guard, a shape error) are not
retried: they reach the caller with their type.

Needs Ray: ``pip install -e ".[ray]"`` (imported only when the executor starts).

Example:
    >>> with RayExecutor(num_cpus=2) as executor:          # or RayExecutor(address="auto")
    ...     out = model.encrypted_forward(query, executor=executor)
"""

import collections
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

import primitives as P
from primitives import work_units

INSTALL_HINT = 'pip install -e ".[ray]"'
_WORKER_CACHE_SIZE = 2
_worker_cache = collections.OrderedDict()  # in each Ray worker: (kind, key) -> model or context


def import_ray():
    """Return the ``ray`` module, or raise ImportError saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"The Ray executor needs Ray, which is not installed. Install the extra: "
                          f"{INSTALL_HINT} (or pip install 'ray>=2.40'), or use the local executor "
                          "(executor='local', the default).") from error
    return ray


class RayExecutor:
    """Run encrypted forward passes as Ray tasks, one per (ciphertext group, CRT prime).

    Args:
        address: the Ray cluster to join (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``);
            None starts a local Ray instance (or uses the one already running in this process).
        num_cpus: CPUs of a local instance (default: Ray's, all cores); not for an address.
        max_retries: times Ray reruns a task whose worker died (default 3).
        max_in_flight: units submitted at once (default twice the cluster's CPUs): bounds the
            object store's share of unit inputs.
        init_options: more ``ray.init`` keywords (``runtime_env``, ``namespace``, ...).
    """

    name = "ray"

    def __init__(self, address=None, num_cpus=None, max_retries=3, max_in_flight=None, init_options=None):
        if address is not None and num_cpus is not None:
            raise ValueError("num_cpus only applies to a local Ray instance; a cluster at an address "
                             "has its own CPUs. Pass one of address= and num_cpus=.")
        for name, value in (("max_retries", max_retries), ("max_in_flight", max_in_flight)):
            if value is not None and (not isinstance(value, int) or value < (0 if name == "max_retries" else 1)):
                raise ValueError(f"Expected `{name}` to be a {'non-negative' if name == 'max_retries' else 'positive'}"
                                 f" integer. Received: {name}={value!r}")
        self.address, self.num_cpus = address, num_cpus
        self.max_retries, self.max_in_flight = max_retries, max_in_flight
        self.init_options = dict(init_options or {})
        self.last_run = None  # figures of the latest forward pass (bytes moved, units, workers)
        self._ray = self._task = None
        self._started_ray = False
        self._shared = {}  # (kind, key) -> (key, object ref, bytes)

    # ----------------------------------------------------------------- lifecycle
    def start(self):
        """Connect to Ray (start a local instance if none runs); called by the first forward."""
        if self._task is not None:
            return self
        ray = import_ray()
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False, **self.init_options}
            if self.address is None and self.num_cpus is not None:
                options["num_cpus"] = self.num_cpus
            ray.init(address=self.address, **options)
            self._started_ray = True
        self._ray = ray
        self._task = ray.remote(_run_unit).options(max_retries=self.max_retries, retry_exceptions=False,
                                                   num_cpus=1)
        return self

    def close(self):
        """Release the shared objects; shut Ray down if this executor started it."""
        self._shared.clear()
        if self._started_ray and self._ray is not None and self._ray.is_initialized():
            self._ray.shutdown()
        self._task, self._started_ray = None, False

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------- the forward pass
    def forward(self, model, x, progress=None):
        """``model``'s output on the encrypted ``x``, computed unit by unit on Ray.

        ``progress`` is not called: the layers run in other processes. A plain (numpy) ``x``
        runs here.
        """
        if not P.is_encrypted(x):
            return model._forward_on_this_machine(x, progress)
        self.start()
        ray = self._ray
        started = time.perf_counter()
        shared = (*self._share("model", model), *self._share("context", x.context))
        limit = self.max_in_flight or max(1, 2 * int(ray.cluster_resources().get("CPU", 1)))
        pending, results, report = {}, {}, _Report()
        try:
            for (group, component), unit in work_units.split_units(x):
                while len(pending) >= limit:
                    self._collect(pending, results, x, report)
                packed = work_units.pack(unit)
                report.inputs.append(work_units.packed_size(packed))
                pending[self._task.remote(shared[0:2], shared[2:4], ray.put(packed), component)] = (group, component)
                del packed, unit
            while pending:
                self._collect(pending, results, x, report)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        out = work_units.stitch_units(results, x)
        self.last_run = report.summary(time.perf_counter() - started, self._shared, limit)
        return out

    def _share(self, kind, value):
        """(key, object ref) of the model or public context in the object store, put once."""
        if kind == "model":
            plan = value._require_plan("run on Ray (the workers load the prepared model)")
            cache_key = (kind, id(value), id(plan))
        else:
            cache_key = (kind, value.key_id, len(value.components))
        if cache_key not in self._shared:
            data = _prepared_files(value) if kind == "model" else value.serialize(save_secret_key=False)
            size = sum(len(b) for b in data.values()) if kind == "model" else len(data)
            digest = _digest(data)
            # keep the model object alive with its entry, so its id is not reused by another
            self._shared[cache_key] = (digest, self._ray.put(data), size, value)
        digest, ref, _, _ = self._shared[cache_key]
        return digest, ref

    def _collect(self, pending, results, x, report):
        done, _ = self._ray.wait(list(pending), num_returns=1)
        for ref in done:
            group, component = pending.pop(ref)
            try:
                packed, info = self._ray.get(ref)
            except self._ray.exceptions.RayTaskError:
                raise  # the computation's own error (also an instance of its original type)
            except self._ray.exceptions.RayError as error:
                raise RuntimeError(
                    f"The work unit (group {group}, CRT prime {component}) failed on Ray after "
                    f"{self.max_retries} retries: {error}. A worker that runs out of memory is "
                    "killed: give the workers more memory, or use fewer CPUs per node "
                    "(each holds one unit).") from error
            report.outputs.append(work_units.packed_size(packed))
            report.workers.append(info)
            results[(group, component)] = work_units.unpack(packed, work_units.unit_context(x, component))

    def __repr__(self):
        where = self.address or (f"local Ray instance, {self.num_cpus} CPUs" if self.num_cpus
                                 else "local Ray instance")
        return f"<heras RayExecutor: {where}, max_retries={self.max_retries}>"


class _Report:
    """Bytes and worker figures gathered during one forward pass."""

    def __init__(self):
        self.inputs, self.outputs, self.workers = [], [], []

    def summary(self, seconds, shared, limit):
        sizes = {kind: size for (kind, *_), (_, _, size, _) in shared.items()}
        return {"units": len(self.inputs), "seconds": seconds, "max_in_flight": limit,
                "model_bytes": sizes.get("model"), "context_bytes": sizes.get("context"),
                "unit_input_bytes": max(self.inputs), "unit_output_bytes": max(self.outputs),
                "input_bytes": sum(self.inputs), "output_bytes": sum(self.outputs),
                "unit_seconds": [w["seconds"] for w in self.workers],
                "worker_pids": sorted({w["pid"] for w in self.workers}),
                "worker_peak_rss_mb": max(w["peak_rss_mb"] for w in self.workers)}


def _digest(data):
    """SHA-256 of bytes, or of a {name: bytes} mapping."""
    digest = hashlib.sha256()
    for name, blob in (sorted(data.items()) if isinstance(data, dict) else [("", data)]):
        digest.update(name.encode() + len(blob).to_bytes(8, "little") + blob)
    return digest.hexdigest()


def _prepared_files(model):
    """The prepared model as {file name: bytes} (``save_prepared``'s folder, in memory)."""
    from ..deployment import save_prepared
    with tempfile.TemporaryDirectory(prefix="sealion-ray-") as folder:
        save_prepared(model, folder)
        return {path.name: path.read_bytes() for path in sorted(Path(folder).iterdir())}


def _load_model(files):
    from ..deployment import load_prepared
    with tempfile.TemporaryDirectory(prefix="sealion-ray-") as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        return load_prepared(folder)


def _load_context(data):
    context = P.Context.from_bytes(data)
    if context.has_secret_key:  # the driver never sends one; refuse rather than hold it
        raise P.SecretKeyError("A Ray worker was sent a context holding the secret key; only public "
                               "contexts may leave the client (Context.serialize() without the key).")
    return context


def _cached(kind, key, ref, load):
    """The worker's copy of a shared object, loaded from the object store on first use."""
    entry = (kind, key)
    if entry not in _worker_cache:
        import ray
        _worker_cache[entry] = load(ray.get(ref))
        while len(_worker_cache) > 2 * _WORKER_CACHE_SIZE:
            _worker_cache.popitem(last=False)
    _worker_cache.move_to_end(entry)
    return _worker_cache[entry]


def _run_unit(model_share, context_share, unit, component):
    """Ray task: the model's output on one (group, prime) unit; returns (bytes, worker figures)."""
    started = time.perf_counter()
    model = _cached("model", model_share[0], model_share[1], _load_model)
    context = _cached("context", context_share[0], context_share[1], _load_context)
    view = P.Context(context.parameters, _components=[context.components[component]], _key_id=context.key_id)
    out = work_units.pack(model._run_layers(work_units.unpack(unit, view)))
    return out, {"pid": os.getpid(), "seconds": time.perf_counter() - started,
                 "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
