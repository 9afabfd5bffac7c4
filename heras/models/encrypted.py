"""`EncryptedModel`: what Sequential and the functional Model share to run on ciphertexts.

Preparation, quantisation, encrypted and discretised inference, encrypted evaluation and the
cost summary are written once against :func:`walk`, which runs a function layer by layer
through a Sequential model or through a functional model's graph (inputs of a merging layer
such as Add arrive as a list).
"""

import contextlib
import time

import keras
import numpy as np

import primitives as P
from primitives import crt
from .. import execution
from .costs import check_encryptable, encryption_costs, format_costs
from . import pruning, streaming
from .preparation import prepare, walk


@contextlib.contextmanager
def _weights_mod(layer, t):
    """Temporarily reduce a prepared layer's bias (and an Add's input factors) mod t."""
    saved = getattr(layer, "_encryption_weights", None)
    factors = getattr(layer, "input_factors", None)
    if saved and "bias" in saved:
        layer._encryption_weights = {**saved, "bias": crt.residues(saved["bias"], t).astype(np.int64)}
    if factors:
        layer.input_factors = [int(f) % t for f in factors]
    try:
        yield
    finally:
        if saved is not None:
            layer._encryption_weights = saved
        if factors:
            layer.input_factors = factors


def _call(layer, *args, **kwargs):
    return layer.call(*args, **kwargs)


class EncryptedModel:
    """Mixin for heras models: ``prepare_encryption`` then encrypted predict/evaluate."""

    encryption_plan = None

    # ----------------------------------------------------------------- preparation
    def prepare_encryption(self, scheme="bfv", security=128, calibration=None, input_bits=8,
                           weight_bits=8, precision_bits=20, batch_size=None, fine_tune=None):
        """Compute the encryption plan after ``fit``: discretise (BFV) or plan levels and errors
        (CKKS), prove value bounds, and select parameters. Returns and stores the plan.

        Args:
            scheme: "bfv" (exact integers, CRT) or "ckks" (approximate reals).
            security: 128, 192 or 256 bits.
            calibration: sample inputs: their range sets the input quantisation (default [0, 1]).
            input_bits, weight_bits: BFV quantisation of inputs and weights.
            precision_bits: CKKS: the output error is proven below 2^-precision_bits for inputs
                within the calibrated range (the scale grows with the network's amplification
                of per-op errors; see ``heras.models.preparation``).
            batch_size: samples per encrypted batch (noted with the parameters).
            fine_tune: BFV only: ``{"x": x_train, "y": y_train, "epochs": 2, ...}`` (the keywords
                of :func:`heras.models.fine_tuning.fine_tune`) fine-tunes the model with inputs and
                kernels rounded at ``input_bits`` / ``weight_bits`` before discretising it.
        """
        if fine_tune is not None:
            self._fine_tune(scheme, fine_tune, calibration, input_bits, weight_bits)
        self.encryption_plan = prepare(self, scheme, security, calibration, input_bits, weight_bits,
                                       precision_bits, batch_size)
        return self.encryption_plan

    def _fine_tune(self, scheme, options, calibration, input_bits, weight_bits):
        from .fine_tuning import FINE_TUNE_KEYS, fine_tune
        if scheme != "bfv":
            raise ValueError(f"`fine_tune` rounds inputs and weights as BFV does; scheme={scheme!r} keeps "
                             "real weights. Remove fine_tune or use scheme='bfv'.")
        if not isinstance(options, dict) or "x" not in options or "y" not in options:
            raise ValueError("Expected `fine_tune` to be a dict with the training data: "
                             f"{{'x': x_train, 'y': y_train, 'epochs': 2}}. Received: {type(options).__name__}.")
        unknown = sorted(set(options) - {"x", "y", *FINE_TUNE_KEYS})
        if unknown:
            raise ValueError(f"Unknown `fine_tune` key(s) {unknown}; valid keys are x, y, {', '.join(FINE_TUNE_KEYS)}.")
        fine_tune(self, input_bits=input_bits, weight_bits=weight_bits, calibration=calibration, **options)

    def _require_plan(self, action):
        if self.encryption_plan is None:
            raise RuntimeError(f"Cannot {action} before preparation: call "
                               "model.prepare_encryption(scheme=..., calibration=x_train) after fit.")
        return self.encryption_plan

    def encrypt_inputs(self, context, x):
        """Client: quantise (BFV) and encrypt inputs of shape (batch, *input_shape)."""
        plan = self._require_plan("encrypt inputs")
        return P.encrypt(context, plan.quantize(x), bound=plan.input_bound)

    def decrypt_outputs(self, context, encrypted):
        """Client: decrypt and undo the output scale; returns float logits."""
        plan = self._require_plan("decrypt outputs")
        return np.asarray(P.decrypt(context, encrypted), dtype=np.float64) / plan.output_scale

    def predict_discretized(self, x):
        """The exact plaintext oracle of the prepared model (integers for BFV), unscaled."""
        plan = self._require_plan("run the discretised model")
        out = plan.quantize(x)
        if plan.scheme == "bfv" and plan.max_value >= 2 ** 62:
            return self._discretized_by_residues(out, plan)
        return walk(self, out, _call)

    def _discretized_by_residues(self, x, plan):
        """The integer model past 2^62, exactly: per CRT prime in int64, then recombined.

        Every layer maps residues in [0, t) with small integer weights; a product stays below
        2^63 while t < 2^31 and t * (largest weight-row l1-norm) < 2^62, as BFV's own
        arithmetic mod t does. Otherwise falls back to Python ints (exact, slow).
        """
        moduli = plan.parameters.plain_moduli
        if max(moduli) >= 2 ** 31 or max(moduli) * plan.linear_l1 >= 2 ** 62:
            return walk(self, x.astype(object), _call)
        residues = []
        for t in moduli:
            def residue_call(layer, *args, **kwargs):
                with _weights_mod(layer, t):
                    out = np.mod(layer.call(*args, **kwargs), t)
                return out.astype(np.int64) if out.dtype == object else out  # a polynomial in Python ints
            residues.append(walk(self, np.mod(x, t), residue_call).astype(np.uint64))
        return crt.reconstruct(residues, moduli)

    # ----------------------------------------------------------------- inference
    def predict(self, x, *args, **kwargs):
        """Keras' predict for arrays; layer-by-layer encrypted inference for an EncryptedTensor."""
        if P.is_encrypted(x):
            self._require_plan("predict on encrypted inputs")
            return self.encrypted_forward(x)
        return super().predict(x, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, encrypted=False, context=None, executor=None, **kwargs):
        """Keras' evaluate; with ``encrypted=True``, encrypt, run, decrypt and report.

        ``executor`` (encrypted only) says where the server's forward pass runs: None or
        ``"local"`` (this machine), ``"ray"`` (a local Ray instance, shut down afterwards) or an
        executor object such as ``heras.execution.ray_executor.RayExecutor(address=...)``.

        Returns (encrypted): a dict with accuracy, samples, latency_s (server forward),
        throughput_per_hour, encrypt_s, decrypt_s and agreement with the discretised (BFV)
        or float (CKKS) model; for CKKS also max_error (against the float64 model) and the
        proven error_bound.
        """
        if not encrypted:
            return super().evaluate(x, y, *args, **kwargs)
        plan = self._require_plan("evaluate encrypted")
        client = context or P.Context(plan.parameters)
        server = client.public()
        start = time.perf_counter()
        query = [self.encrypt_inputs(server, x)]  # popped below: the forward pass frees it early
        encrypt_s, start = time.perf_counter() - start, time.perf_counter()
        answer = self.encrypted_forward(query.pop(), executor=executor)
        latency_s, start = time.perf_counter() - start, time.perf_counter()
        raw = P.decrypt(client, answer)
        decrypt_s = time.perf_counter() - start
        logits = np.asarray(raw, dtype=np.float64) / plan.output_scale
        extra = {}
        if plan.scheme == "bfv":
            discretised = np.asarray(self.predict_discretized(x))
            exact = bool(np.array_equal(raw.astype(object), discretised.astype(object)))  # bit for bit
            reference = np.asarray(discretised, dtype=np.float64)
        else:
            reference, exact = np.asarray(self.predict_discretized(x), dtype=np.float64), None
            extra = {"max_error": float(np.max(np.abs(logits - reference))), "error_bound": plan.error_bound}
        predictions = logits.argmax(axis=-1)
        samples = len(predictions)
        return {"accuracy": float(np.mean(predictions == np.asarray(y).reshape(-1))), "samples": samples,
                "latency_s": latency_s, "throughput_per_hour": samples / latency_s * 3600,
                "encrypt_s": encrypt_s, "decrypt_s": decrypt_s,
                "agreement": float(np.mean(predictions == reference.argmax(axis=-1))), "exact": exact,
                "parameters": repr(plan.parameters), **extra}

    def encrypted_forward(self, x, progress=None, executor=None):
        """Run every layer's ``call`` on the encrypted tensor ``x`` (public material only).

        The low-level step behind ``predict``: it uses the weights as they are (the prepared
        ones after ``prepare_encryption``), so call it directly only for weights already in
        encryptable form, e.g. hand-set integers. BFV CRT primes and ciphertext groups are
        spread over worker processes (:mod:`primitives.parallel`; ``SEALION_WORKERS=1`` keeps
        everything in one process). ``executor`` runs the pass elsewhere: ``"ray"`` or an
        executor from :mod:`heras.execution`.

        Progress, two ways:

        - ``progress(index, layer, output)``, if given, is called after each layer computed in
          this process (per-layer timing, noise measurements); ``output`` is the layer's
          encrypted output for the CRT components this process computed, or None for the
          layers inside a streamed segment (reported once the segment is done), whose whole
          outputs never exist. A Ray executor reports no per-layer progress: its layers run in
          other processes.
        - :func:`primitives.progress.report` events for one display of the whole pass, across
          the worker processes: ``("start", steps)`` first, then ``("step", label)`` for each
          layer of each CRT component part and each block of a streamed segment, from
          whichever process computed it (listen with :func:`primitives.progress.listening`).
        """
        check_encryptable(self.layers)
        expected = tuple(self.inputs[0].shape[1:]) if self.inputs else None
        if expected is not None and tuple(x.shape) != expected:
            raise P.ShapeError(f"The model expects inputs of per-sample shape {expected}; the "
                               f"encrypted tensor has shape {tuple(x.shape)}.")
        with execution.use(executor) as runner:
            return runner.forward(self, x, progress)

    def _forward_on_this_machine(self, x, progress=None):
        """The forward pass in this machine's processes (the local executor)."""
        # BFV CRT primes (or ciphertext groups) are independent: one process per core; when
        # the cores do not divide the primes, the leftover primes' streamed blocks are shared
        stream = P.is_encrypted(x) and x.scheme == "bfv"
        if isinstance(self, keras.Sequential) and P.is_encrypted(x):  # the plan checks the scheme
            computed = pruning.computed_features(self)
            plan = streaming.shared_component_plan(self.layers, x, P.parallel.worker_count(), computed=computed)
            if plan is not None:
                end, blocks, chunks, shared, _ = plan
                after = tuple(x.shape)
                for layer in self.layers[:end]:
                    after = tuple(layer.compute_output_shape((None,) + after)[1:])
                tail_steps = streaming.count_steps(self.layers[end:], after, stream, computed=computed[end:],
                                                   positions=computed[end - 1])
                P.progress.report("start", sum(len(chunk) for chunk in chunks)
                                  * streaming.count_steps(self.layers, x.shape, stream, computed=computed)
                                  + len(shared) * (len(blocks) + tail_steps))
                whole = P.parallel.one_component_at_a_time(lambda part: self._run_layers(part, progress))
                # progress: this process's whole primes report every layer, the shared primes'
                # finish (after the workers' shares arrive) the layers after the segment
                tail = lambda tensor: self._run_layers(tensor, progress, start=end)  # noqa: E731
                return streaming.run_shared(self.layers, x, plan, whole, tail)
        P.progress.report("start", P.parallel.part_count(x) * self._steps_per_part(x, stream))
        return P.parallel.map_parts(lambda part: self._run_layers(part, progress), x)

    def _steps_per_part(self, x, stream):
        """Progress steps of :meth:`_run_layers` on one CRT component of ``x``."""
        if isinstance(self, keras.Sequential):
            return streaming.count_steps(self.layers, x.shape, stream, computed=pruning.computed_features(self))
        return sum(1 for layer in self.layers if not isinstance(layer, keras.layers.InputLayer))

    def _run_layers(self, x, progress=None, start=0):
        """The layers from ``start`` on, in this process (Sequential: streaming what can be)."""
        indices = {id(layer): index for index, layer in enumerate(self.layers)}

        def report(layer, output=None):
            if progress is not None:
                progress(indices[id(layer)], layer, output)

        def step(layer, *args, **kwargs):
            out = layer.call(*args, **kwargs)
            P.progress.report("step", layer.name)
            report(layer, out)
            return out
        if isinstance(self, keras.Sequential):  # wide hidden layers stream, pruned features are left out
            computed = pruning.computed_features(self)
            return streaming.run_sequential(self.layers[start:], x, step, report, computed=computed[start:],
                                            positions=computed[start - 1] if start else None)
        if start:
            raise ValueError("Only Sequential models run from a given layer on.")
        return walk(self, x, step)

    def encryption_costs(self):
        """Per-layer rows: output shape, parameters, activations, BFV/CKKS depth so far."""
        return encryption_costs(self)

    def summary(self, *args, **kwargs):
        """Keras' summary, then what each layer costs on ciphertexts."""
        super().summary(*args, **kwargs)
        print_fn = kwargs.get("print_fn") or print
        print_fn(format_costs(self.encryption_costs()))
        if self.encryption_plan is not None:
            print_fn(str(self.encryption_plan))
