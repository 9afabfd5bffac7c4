"""Use every core for encrypted computations that split into independent parts.

SEAL is single-threaded and TenSEAL's bindings hold the GIL, so threads do not help. But BFV
with k CRT primes is k independent computations (one per prime), and a batch larger than the
slot count is several independent ciphertext groups. :func:`map_parts` runs a function on
each part in a forked worker process (the parent computes one part itself), then stitches the
results back together. Forking shares the inputs, keys and model with the workers without
copying or serialising them; only the (small) results travel back, in the checked
serialisation format.

The function must only compute on the encrypted tensor (SEAL and numpy): a forked child must
not use TensorFlow, whose thread pools do not survive a fork. The child freezes the objects it
inherits (``gc.freeze``) so that the garbage collector never finalises the parent's
TensorFlow objects there. heras runs prepared models,
whose weights are numpy arrays, so its encrypted forward pass qualifies.

``SEALION_WORKERS`` (environment) sets the number of processes (default: see
:func:`worker_count`); 1 turns this off.
"""

import os

import numpy as np

from . import forking, progress
from .context import Context
from .encrypted_tensor import EncryptedTensor
from .settings import integer_setting


def worker_count(components=None):
    """Processes to use: $SEALION_WORKERS if set, else one per core, or one per CRT component.

    With k components on c cores, c processes would leave cores idle at the end whenever c
    does not divide k (3 primes on 2 cores: 2 + 1). Up to 2c components, one process per
    component lets the scheduler share the cores evenly instead (CNN-16 with 3 primes on
    2 cores: 61.5 s instead of 73.9 s per batch); beyond that, the memory of that many
    processes at once outweighs the gain, and each core's process takes several components.
    heras asks for ``worker_count()`` (the cores) instead when it can share the leftover
    components' streamed blocks between the processes (``streaming.shared_component_plan``:
    5 primes on 2 cores run as 2.5 + 2.5 rather than 3 + 2; 3 primes as 1.5 + 1.5 in two
    processes rather than three).
    """
    setting = integer_setting("SEALION_WORKERS", None, minimum=1)
    if setting is not None:
        return setting
    cores = _cores()
    if components and components % cores and components <= 2 * cores:
        return components
    return cores


def _cores():
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split(x, parts):
    """Split ``x`` into at most ``parts`` independent tensors: by CRT component, else by group.

    Returns (pieces, axis): axis 0 = components, 1 = groups, None = not split.
    """
    components, groups = x.data.shape[0], x.data.shape[1]
    if parts > 1 and components > 1:
        chunks = np.array_split(np.arange(components), min(parts, components))
        return [component_view(x, chunk) for chunk in chunks], 0
    if parts > 1 and groups > 1:
        chunks = np.array_split(np.arange(groups), min(parts, groups))
        return [_group_view(x, chunk) for chunk in chunks], 1
    return [x], None


def component_view(x, indices):
    """``x`` restricted to some CRT components. The context view keeps the full parameters, so
    overflow guards still check against the whole CRT product T."""
    context = Context(x.context.parameters, _components=[x.context.components[i] for i in indices],
                      _key_id=x.context.key_id)
    # noise estimates stay per plaintext prime of the full parameters (ops compute them so)
    return EncryptedTensor(context, x.data[indices], x.shape, x.batch_size, x.bound, x.noise_used_bits,
                           x.depth_used)


def _group_view(x, indices):
    """``x`` restricted to some ciphertext groups (consecutive slices of the batch)."""
    slots = x.context.slot_count
    first, last = int(indices[0]), int(indices[-1])
    batch = min(x.batch_size, (last + 1) * slots) - first * slots
    return EncryptedTensor(x.context, x.data[:, indices], x.shape, batch, x.bound, x.noise_used_bits,
                           x.depth_used)


def map_parts(function, x, workers=None):
    """Return ``function(x)``, computed part by part in parallel processes when ``x`` splits.

    Args:
        function: EncryptedTensor -> EncryptedTensor, acting on every CRT component and group
            independently (element-wise ops, linear layers, polynomials: any network).
        x: the input tensor.
        workers: processes in all (default :func:`worker_count`).

    Each process runs its CRT components one after the other (:func:`one_component_at_a_time`),
    so only one component's intermediate ciphertexts are alive in it at a time.
    """
    if not isinstance(x, EncryptedTensor):
        return function(x)
    workers = worker_count(x.data.shape[0]) if workers is None else workers
    function = one_component_at_a_time(function)
    if workers <= 1 or not hasattr(os, "fork"):
        return function(x)
    pieces, axis = split(x, workers)
    if axis is None:
        return function(x)
    jobs = [lambda piece=piece: [function(piece)] for piece in pieces]
    results = run_jobs(jobs, [[piece.context] for piece in pieces])
    return _stitch([r[0] for r in results], axis, x)


def part_count(x, workers=None):
    """How many one-component parts ``map_parts(function, x, workers)`` calls ``function`` on,
    in all its processes together (progress displays count work across the workers)."""
    if not isinstance(x, EncryptedTensor):
        return 1
    components = x.data.shape[0]
    workers = worker_count(components) if workers is None else workers
    if workers <= 1 or not hasattr(os, "fork"):
        return components
    pieces, axis = split(x, workers)
    return len(pieces) if axis == 1 else components


def run_jobs(jobs, contexts):
    """Run ``jobs`` (callables returning lists of EncryptedTensors) side by side; return their
    results in order.

    ``jobs[0]`` runs in this process, every other job in a forked worker whose tensors come
    back serialised and are rebuilt under ``contexts[i][j]`` (the context of the job's j-th
    result). A worker's exception is raised here, with the worker's traceback as its cause.
    Without ``os.fork`` (not POSIX) the jobs run here one after the other.
    """
    if not hasattr(os, "fork"):
        return [job() for job in jobs]
    children, progress_pipes = [], []
    for job in jobs[1:]:
        channel = progress.open_channel()  # None unless someone listens to progress
        children.append(_fork(job, channel))
        progress_pipes.append(progress.in_parent(channel))
    relays = [progress.relay(pipe) for pipe in progress_pipes]  # after every fork: no thread forks
    try:
        first = jobs[0]()
    except BaseException:
        for pid, reader in children:
            forking.finish(pid, reader)
        raise
    results = [first] + [_collect(pid, reader, job_contexts)
                         for (pid, reader), job_contexts in zip(children, contexts[1:])]
    for thread in relays:  # the workers have exited: their last events are being delivered
        if thread is not None:
            thread.join()
    return results


def one_component_at_a_time(function):
    """``function`` applied to each CRT component of its input in turn, results stitched.

    The components are independent computations; running them in sequence rather than side
    by side (every op looping over all components) divides the memory of intermediate results
    by the number of components and computes the same ciphertexts.
    """
    def run(x):
        components = x.data.shape[0]
        if components == 1:
            return function(x)
        return _stitch([function(component_view(x, [index])) for index in range(components)], 0, x)
    return run


def stitch_components(results, x):
    """One tensor from per-CRT-component results (in component order) of a computation on ``x``."""
    return _stitch(results, 0, x)


def _fork(job, progress_channel=None):
    """Start ``job`` in a forked worker that sends its tensors back serialised."""
    return forking.start(lambda: [tensor.serialize() for tensor in job()],
                         in_child=lambda: progress.in_worker(progress_channel))


def _collect(pid, reader, contexts):
    message, status = forking.finish(pid, reader)
    if message is None:
        raise RuntimeError(f"A worker process died without a result ({forking.describe(status)}). Set "
                           "SEALION_WORKERS=1 to compute in one process.")
    if message[0] == "error":
        error, trace = message[1], message[2]
        raise error from RuntimeError(f"in a worker process:\n{trace}")
    return [EncryptedTensor.from_bytes(data, context) for data, context in zip(message[1], contexts)]


def _stitch(results, axis, x):
    """One tensor from the parts' results (split along ``axis``)."""
    first = results[0]
    data = np.concatenate([r.data for r in results], axis=axis)
    # every part estimates the noise of all plaintext primes alike: keep the worst
    noise = np.max([np.broadcast_to(np.asarray(r.noise_used_bits, dtype=float), x.noise_used_bits.shape)
                    for r in results], axis=0)
    batch = first.batch_size if axis == 0 else sum(r.batch_size for r in results)
    bound = first.bound
    for other in results[1:]:  # parts see the same bounds; keep the largest if they ever differ
        bound = np.maximum(bound, other.bound) if bound.dtype != object else np.array(
            [max(a, b) for a, b in zip(bound.tolist(), other.bound.tolist())], dtype=object)
    return EncryptedTensor(x.context, data, first.shape, batch, bound, noise,
                           max(r.depth_used for r in results))
