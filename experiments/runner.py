"""Run one experiment end to end: train or load, prepare, encrypt, infer encrypted, report.

The client/server split is kept inside one process: the client context (with the secret key)
encrypts and decrypts; the server's forward pass gets only ``client.public()`` material.
"""

import math
import os
import resource
import sys
import time

import keras
import numpy as np

import heras
import primitives as P
from primitives.serialization import library_versions
from .building import build_model, plaintext_accuracy, train
from .config import ConfigError
from .data import load_dataset
from .memory import MemorySampler
from .plots import write_plots
from .progress import ForwardProgress, display_mode
from .results import ResultCheckError, check_results, claim_output_dir, write_results


def prepare(config, log=print, verbose=None):
    """Load data, build and train (or load) the model, and prepare it for encryption.

    Returns ``(model, plan, data)`` with ``data = ((x_train, y_train), (x_test, y_test))``.
    """
    keras.utils.set_random_seed(config.training.seed)
    data = load_dataset(config)
    (x_train, y_train), _ = data
    model = build_model(config, x_train.shape[1:])
    if config.model.load:
        log(f"Loaded {config.model.load}")
    else:
        log(f"Training {config.model.name} on {len(x_train):,} {config.dataset.name} images "
            f"for {config.training.epochs} epochs")
        train(model, config, x_train, y_train, display_mode(verbose if verbose is not None
                                                            else config.training.verbose))
    e = config.encryption
    samples = evaluation_samples(config, data)
    fine_tune = None
    if e.fine_tune is not None:  # quantisation-aware, with the training section's augmentation
        fine_tune = {"x": x_train, "y": y_train, "augmentation": config.training.augmentation,
                     "seed": config.training.seed, "verbose": display_mode(verbose if verbose is not None
                                                                         else config.training.verbose),
                     "batch_size": config.training.batch_size, **e.fine_tune}
        log(f"Fine-tuning with {e.input_bits}-bit inputs and {e.weight_bits}-bit weights: {e.fine_tune}")
    try:
        plan = model.prepare_encryption(e.scheme, security=e.security, calibration=x_train,
                                        input_bits=e.input_bits, weight_bits=e.weight_bits,
                                        precision_bits=e.precision_bits, batch_size=samples,
                                        fine_tune=fine_tune)
    except NotImplementedError as err:
        raise ConfigError(f"model.layers: {err}") from err
    if isinstance(e.parameters, dict):
        plan.parameters = explicit_parameters(e, plan)
    return model, plan, data


def explicit_parameters(encryption, plan):
    """The parameters written in the config, checked against what the prepared model needs."""
    fields = {"scheme": encryption.scheme, "security": encryption.security, **encryption.parameters}
    try:
        params = P.Parameters.from_dict(fields)
    except P.ParameterError as err:
        raise ConfigError(f"encryption.parameters: {err}") from err
    if params.scheme != encryption.scheme:
        raise ConfigError(f"encryption.parameters.scheme is {params.scheme!r} but encryption.scheme is "
                          f"{encryption.scheme!r}; make them agree.")
    if params.scheme == "bfv" and params.max_exact_value < plan.max_value:
        raise ConfigError(
            f"encryption.parameters: plaintext moduli {list(params.plain_moduli)} hold |value| <= "
            f"{params.max_exact_value:.4g}, but the model's proven bound is {plan.max_value:.4g}. Add or "
            "enlarge plain_moduli, lower encryption.input_bits/weight_bits, or use parameters: auto.")
    if params.scheme == "ckks" and params.levels < plan.depth:
        raise ConfigError(f"encryption.parameters: {params.levels} rescaling levels, but the model needs "
                          f"{plan.depth}. Add coefficient primes, or use parameters: auto.")
    return params


def evaluation_samples(config, data):
    """How many test images get encrypted."""
    test_count = len(data[1][0])
    wanted = config.evaluation.samples
    return test_count if wanted is None else min(wanted, test_count)


def run(config, output=None, overwrite=None, log=print, verbose=None, executor=None):
    """Run ``config`` and write its results and plots; returns the results dict.

    Args:
        config: a :class:`~experiments.config.RunConfig`.
        output: folder to write into (default ``config.output.dir`` or ``runs/<name>``).
        overwrite: replace earlier results there (default ``config.output.overwrite``).
        log: where progress lines go.
        verbose: Keras verbosity for training and progress bars (None: bars on a terminal,
            one line per epoch or forward step otherwise).
        executor: where the encrypted forward passes run (``heras.execution``; None: local).

    Raises:
        ResultCheckError: after writing everything, if a guarantee failed (see
            :func:`experiments.results.check_results`): the folder holds the results to inspect.
    """
    overwrite = config.output.overwrite if overwrite is None else overwrite
    folder = claim_output_dir(output or config.output_dir(), overwrite)
    started = time.perf_counter()
    model, plan, data = prepare(config, log, verbose)
    results = measure(config, model, plan, data, log, verbose, executor)
    results["total_s"] = time.perf_counter() - started
    heras.deployment.save_prepared(model, folder / "prepared", overwrite=True)
    (folder / "parameters.yaml").write_text(plan.parameters.to_yaml(), encoding="utf-8")
    results["plots"] = write_plots(folder, results)
    json_path, _ = write_results(folder, results)
    results["output_dir"] = str(folder)
    log(f"Results written to {json_path}")
    failures = check_results(results)
    if failures:
        raise ResultCheckError(f"The run finished but its results break a guarantee: {'; '.join(failures)}. "
                               f"Everything is kept in {folder} for inspection.", results)
    return results


def measure(config, model, plan, data, log=print, verbose=None, executor=None):
    """Every figure of results.json for a prepared model: accuracies, costs, encrypted run."""
    (_, _), (x_test, y_test) = data
    log(str(plan))
    results = {"model": config.model.name, "dataset": config.dataset.name, "scheme": plan.scheme,
               "security_bits": plan.parameters.security}
    results.update(_parameter_fields(plan.parameters))
    costs = model.encryption_costs()
    results.update({"parameters_count": int(model.count_params()),
                    "activations": int(sum(row["activations"] or 0 for row in costs)), "depth": plan.depth,
                    "proven_max_value": float(plan.max_value),
                    "plaintext_accuracy": plaintext_accuracy(model, x_test, y_test)})
    if plan.scheme == "bfv":
        discretised = np.asarray(model.predict_discretized(x_test))
        results["discretized_accuracy"] = _accuracy(discretised, y_test)
    else:
        results["discretized_accuracy"] = None
    samples = evaluation_samples(config, data)
    with MemorySampler() as memory:  # encryption, server forward passes, decryption
        results.update(encrypted_evaluation(model, plan, x_test[:samples], y_test[:samples],
                                            config.evaluation.batch_size, log, verbose, config.evaluation.repeats,
                                            executor))
    upper_bound = peak_memory_mb()
    results["peak_memory_mb"] = memory.peak_mb if memory.peak_mb is not None else upper_bound
    results["peak_memory_mb_upper_bound"] = upper_bound
    results["training_history"] = training_history(model)
    results["library_versions"] = {**library_versions(), "tensorflow": _tensorflow_version(),
                                   "keras": keras.__version__}
    results["config"] = config.to_dict()
    return results


def encrypted_evaluation(model, plan, x, y, batch_size, log=print, verbose=None, repeats=1, executor=None):
    """Encrypt ``x`` batch by batch, run the server forward pass, decrypt and compare.

    Returns the encrypted figures of results.json: accuracy, agreement (with the discretised
    model for BFV, bit for bit in ``exact``; with the float64 evaluation of the same layers for
    CKKS, whose ``max_abs_error`` is measured against it beside the ``proven_error_bound``),
    per-batch latency (the median over batches and ``repeats`` forward passes of each),
    throughput, encryption/decryption time, server time per layer (first pass of each batch,
    main process) and, for BFV, the noise budget left after each layer (first batch).
    """
    client = P.Context(plan.parameters)
    server = client.public()
    batch = batch_size or client.slot_count
    batches = math.ceil(len(x) / batch)
    log(f"Encrypted evaluation: {len(x):,} samples in {batches} batch(es) of up to {batch:,} "
        f"(n = {plan.parameters.poly_modulus_degree}, {len(client.components)} CRT component(s))")
    encrypt_s = decrypt_s = 0.0
    latencies, outputs, layer_times, noise = [], [], {}, {}
    mode = display_mode(verbose)
    for b in range(batches):
        chunk = x[b * batch:(b + 1) * batch]
        start = time.perf_counter()
        query = [model.encrypt_inputs(server, chunk)]  # a list: the last forward pass frees it early
        encrypt_s += time.perf_counter() - start
        log(f"batch {b + 1}/{batches}: encrypted in {time.perf_counter() - start:.2f} s; server forward:")
        observer = LayerObserver(layer_times, noise if b == 0 and plan.scheme == "bfv" else None, client)
        for repeat in range(repeats):
            last = repeat == repeats - 1
            display = ForwardProgress(f"batch {b + 1}/{batches} forward", mode if repeat == 0 else 0, log)
            start = observer.clock = time.perf_counter()
            with display:
                answer = model.encrypted_forward(query.pop() if last else query[0],
                                                 progress=observer if repeat == 0 else None,
                                                 executor=executor)
            latencies.append(time.perf_counter() - start - (observer.measuring_s if repeat == 0 else 0.0))
            if not last:
                del answer
        start = time.perf_counter()
        outputs.append(np.asarray(P.decrypt(client, answer)))
        decrypt_s += time.perf_counter() - start
        del answer
    forward_s = sum(latencies) / repeats
    raw = np.concatenate(outputs)
    logits = raw.astype(np.float64) / plan.output_scale
    predictions = logits.argmax(axis=-1)
    figures = {"encrypted_accuracy": float(np.mean(predictions == np.asarray(y).reshape(-1))),
               "encrypted_samples": int(len(x)), "batch_size": int(batch), "batches": batches,
               "latency_s": float(np.median(latencies)), "latencies_s": latencies, "forward_s_total": forward_s,
               # a batch costs the same however many of its slots hold samples: the SEALion
               # figure is a full batch per latency; the measured rate is beside it
               "throughput_per_hour": batch / float(np.median(latencies)) * 3600,
               "measured_samples_per_hour": len(x) / forward_s * 3600, "encrypt_s": encrypt_s,
               "decrypt_s": decrypt_s, "layer_times_s": layer_times}
    if plan.scheme == "bfv":
        reference = np.asarray(model.predict_discretized(x))
        figures["exact"] = bool(np.array_equal(raw.astype(object), reference.astype(object)))
        figures["mismatched_samples"] = int(np.sum(np.any(raw.astype(object) != reference.astype(object), axis=-1)))
        figures["noise_budget_bits"] = noise
        reference = reference.astype(np.float64)
    else:
        figures.update(ckks_errors(model, plan, x, logits))
        reference = np.asarray(model.predict_discretized(x), dtype=np.float64)
    figures["agreement"] = float(np.mean(predictions == reference.argmax(axis=-1)))
    return figures


def ckks_errors(model, plan, x, logits):
    """CKKS error figures of the decrypted ``logits`` of inputs ``x``.

    ``max_abs_error`` is measured against what the proof bounds: the same layers evaluated on
    float64 numpy arrays (the plain backend, :meth:`predict_discretized`), beside the
    ``proven_error_bound``. Keras' float32 ``predict`` differs from that evaluation by its own
    rounding (~1e-5 on DNN-30), so the distance to it is a separate figure,
    ``keras_float32_max_abs_diff``, which the bound does not cover.
    """
    oracle = np.asarray(model.predict_discretized(x), dtype=np.float64)
    keras_float32 = np.asarray(model.predict(x, batch_size=1024, verbose=0), dtype=np.float64)
    return {"max_abs_error": float(np.max(np.abs(logits - oracle))),
            "proven_error_bound": float(plan.error_bound),
            "keras_float32_max_abs_diff": float(np.max(np.abs(logits - keras_float32)))}


class LayerObserver:
    """The ``progress(index, layer, output)`` callback of ``encrypted_forward`` for a run.

    Adds each layer's server seconds to ``layer_times`` and, when ``noise`` is a dict (BFV, first
    batch), records the noise budget left after the layer: measured with the client's secret
    key (the smallest over the ciphertexts of the CRT components this process computed) and as
    the server-side model estimated it. Only the main process's layers are observed (workers
    run the same layers on other primes alongside); the measuring time is left out of the
    layer times and of the latency (``measuring_s``).
    """

    def __init__(self, layer_times, noise, client):
        self.layer_times, self.noise, self.client = layer_times, noise, client
        self.pid, self.clock, self.measuring_s = os.getpid(), time.perf_counter(), 0.0

    def __call__(self, index, layer, output=None):
        if os.getpid() != self.pid:
            return
        now = time.perf_counter()
        self.layer_times[layer.name] = self.layer_times.get(layer.name, 0.0) + now - self.clock
        if self.noise is not None and P.is_encrypted(output):
            measured = output.noise_budget(self.client)
            row = self.noise.setdefault(layer.name, {"measured": measured,
                                                     "estimated": output.noise_budget_estimate_bits})
            row["measured"] = min(row["measured"], measured)
            row["estimated"] = min(row["estimated"], output.noise_budget_estimate_bits)
        self.clock = time.perf_counter()
        self.measuring_s += self.clock - now


def training_history(model):
    """Loss and metrics per epoch of the last ``fit`` (Keras' History), or None if not trained."""
    history = getattr(getattr(model, "history", None), "history", None)
    if not history:
        return None
    return {key: [float(value) for value in values] for key, values in history.items()}


def summary(results):
    """What ``sealion run`` prints after an inference run, and its exit code."""
    from .results import markdown_table, table_row
    text = markdown_table([table_row(results)])
    failures = check_results(results)
    for failure in failures:
        print(f"ERROR: {failure}; see results.json.", file=sys.stderr)
    return text, 1 if failures else 0


def _parameter_fields(params):
    return {"poly_modulus_degree": params.poly_modulus_degree, "plain_moduli": list(params.plain_moduli),
            "coeff_mod_bit_sizes": list(params.coeff_mod_bit_sizes), "scale_bits": params.scale_bits}


def _accuracy(outputs, y):
    return float(np.mean(np.asarray(outputs, dtype=np.float64).argmax(axis=-1) == np.asarray(y).reshape(-1)))


def peak_memory_mb():
    """Peak resident memory (MiB) of this process plus its largest finished worker process.

    An upper bound: forked workers share the parent's pages, which both figures count
    (``peak_memory_mb`` in results.json is the sampled PSS of the process tree instead: see
    :mod:`experiments.memory`).
    """
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _tensorflow_version():
    import tensorflow
    return tensorflow.__version__
