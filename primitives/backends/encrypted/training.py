"""Encrypted SGD for a Dense -> polynomial -> Dense network, on slot-packed CKKS ciphertexts.

The data owner packs each minibatch with :func:`encrypt_training_set` (one ciphertext per input
feature and per class, see :class:`primitives.training.SlotLayout`) and makes rotation keys for
the few steps the layout uses (:func:`make_rotation_keys`). The server holds the weights as
ciphertexts (:class:`EncryptedMLP`: one per row of W1, one for b1, one per column of W2 and per
entry of b2) and runs :meth:`EncryptedMLP.step`: forward pass, loss gradient, back-propagation
and the update, all on ciphertexts with public and rotation keys only. The step mirrors
:func:`primitives.training.plain_step` term by term; its operation counters are what
:func:`primitives.training.plan.step_counts` predicts.
"""

import numpy as np
from tenseal import sealapi

from ...encrypted_tensor import EncryptedTensor
from ...errors import DepthExhaustedError, SchemeError, SerializationError, ShapeError
from ...headers import integer, integer_list, refuse
from ...serialization import SealObjectIO, pack, unpack
from ...training.layout import SlotLayout, minibatches
from ...training.plain import MLPWeights
from ...training.plan import levels_per_step
from . import seal_ops

SQUARE = (0.0, 0.0, 1.0)
TRAINING_TENSOR = "training_tensor"  # artifact kinds: a serialised PackedTrainingTensor,
TRAINED_WEIGHTS = "trained_weights"  # and serialised EncryptedMLP weights


# ----------------------------------------------------------------- keys and data (data owner)
class RotationKeys:
    """Galois keys for the rotation steps of one layout (public: they cannot decrypt)."""

    def __init__(self, keys, steps, key_id):
        self.keys, self.steps, self.key_id = keys, tuple(steps), key_id

    @classmethod
    def make(cls, context, layout):
        context.require_secret_key("make rotation keys")
        component = context.components[0]
        keygen = sealapi.KeyGenerator(component.seal_context, component.secret_key)
        keys = sealapi.GaloisKeys()
        keygen.create_galois_keys(list(layout.galois_steps()), keys)
        return cls(keys, layout.galois_steps(), context.key_id)

    def serialize(self):
        return pack("rotation_keys", {"steps": list(self.steps), "key_id": self.key_id},
                    [SealObjectIO().to_bytes(self.keys)])

    @classmethod
    def from_bytes(cls, data, context):
        header, (blob,) = unpack(data, "rotation_keys")
        if header["key_id"] != context.key_id:
            raise SchemeError("These rotation keys belong to other keys than the given context.")
        keys = SealObjectIO().load(sealapi.GaloisKeys(), context.components[0].seal_context, blob)
        return cls(keys, header["steps"], header["key_id"])


def make_rotation_keys(context, layout):
    """The data owner's rotation keys for ``layout`` (send them with the public context)."""
    return RotationKeys.make(context, layout)


class PackedTrainingTensor(EncryptedTensor):
    """A training set's features or one-hot labels, minibatch by minibatch, in the slot layout.

    ``data[0, m, f]`` is feature (or class) ``f`` of minibatch ``m``, sample b in the slots of
    block position b, repeated over hidden units and tiles (see :class:`SlotLayout`). It is not
    the batch-across-slots layout of inference: ``primitives.decrypt`` refuses it; the data owner
    reads it back with :meth:`decrypt_samples`.
    """

    packing = "training"

    def __init__(self, context, data, shape, batch_size, bound, layout, counts, rotation_keys):
        super().__init__(context, data, shape, batch_size, bound)
        self.layout, self.counts, self.rotation_keys = layout, list(counts), rotation_keys

    @property
    def minibatch_size(self):
        return self.layout.batch_size

    def decrypt_samples(self, context):
        """Data owner: the packed values back as (samples, features)."""
        context.require_secret_key("decrypt")
        rows = []
        for m, count in enumerate(self.counts):
            columns = [_decode(context, ct)[self.layout.H * np.arange(count)] for ct in self.data[0, m]]
            rows.append(np.stack(columns, axis=1))
        return np.concatenate(rows)

    # ------------------------------------------------------------- bytes for the server
    def serialize(self):
        """The tensor as bytes for the server that trains on it: its ciphertexts, the slot layout,
        the minibatch sizes, its bound and the public rotation keys (no secret key).

        Not the inference tensor format: :meth:`EncryptedTensor.from_bytes` refuses these bytes,
        and :meth:`from_bytes` here refuses an inference tensor.
        """
        io = SealObjectIO()
        header = {"key_id": self.context.key_id, "parameters": self.context.parameters.to_dict(),
                  "hidden_units": self.layout.hidden_units, "minibatch_size": self.layout.batch_size,
                  "slot_count": self.layout.slot_count, "counts": list(self.counts), "samples": self.batch_size,
                  "features": int(self.shape[0]), "bound": [float(b) for b in np.ravel(self.bound)]}
        blobs = [io.to_bytes(ct) for ct in self.data.ravel()]
        return pack(TRAINING_TENSOR, header, blobs + [self.rotation_keys.serialize()])

    @classmethod
    def from_bytes(cls, data, context):
        """Rebuild a tensor from :meth:`serialize` output under ``context`` (the server's public
        copy of the data owner's context); every header field is checked before use."""
        kind = TRAINING_TENSOR
        header, blobs = unpack(data, kind)
        if header.get("key_id") != context.key_id or header.get("parameters") != context.parameters.to_dict():
            raise SchemeError("This training tensor was encrypted under other keys or parameters than the given "
                              "context. Load it with the public context of the data owner who encrypted it.")
        hidden = integer(kind, header, "hidden_units", 1, context.slot_count)
        minibatch = integer(kind, header, "minibatch_size", 1, context.slot_count)
        integer(kind, header, "slot_count", context.slot_count, context.slot_count)
        features = integer(kind, header, "features", 1, context.slot_count)
        counts = integer_list(kind, header, "counts", minimum=1, maximum=minibatch)
        samples = integer(kind, header, "samples", 1)
        if not counts or sum(counts) != samples:
            refuse(kind, "counts", f"minibatch sizes adding up to samples={samples}", counts)
        bound = header.get("bound")
        if not isinstance(bound, list) or len(bound) != features or not all(
                isinstance(b, (int, float)) and not isinstance(b, bool) and 0 < b < float("inf") for b in bound):
            refuse(kind, "bound", f"a list of {features} positive numbers", bound)
        if len(blobs) != len(counts) * features + 1:
            raise SerializationError(f"The {kind} holds {len(blobs)} blobs; its header needs "
                                     f"{len(counts) * features} ciphertexts and the rotation keys.")
        component, io = context.components[0], SealObjectIO()
        cts = np.empty((1, len(counts), features), dtype=object)
        for i, blob in enumerate(blobs[:-1]):
            cts.flat[i] = io.load(sealapi.Ciphertext(component.seal_context), component.seal_context, blob)
        keys = RotationKeys.from_bytes(blobs[-1], context)
        return cls(context, cts, (features,), samples, np.array(bound, dtype=float),
                   SlotLayout(hidden, minibatch, context.slot_count), counts, keys)

    def __repr__(self):
        return (f"<PackedTrainingTensor CKKS {self.batch_size} samples x {self.shape[0]} in "
                f"{len(self.counts)} minibatches of {self.layout.batch_size}, {self.ciphertext_count} ciphertexts>")


def encrypt_training_set(context, x, y_onehot, layout, bound=None):
    """Data owner: pack and encrypt (x, one-hot y) minibatch by minibatch, in order.

    Args:
        context: the data owner's private CKKS context (it encrypts with the secret key and
            makes the rotation keys; the tensors hold its public copy).
        x: (samples, inputs) reals; y_onehot: (samples, classes).
        layout: the :class:`SlotLayout` of the model that will train on them.

    Returns:
        (features, labels): two :class:`PackedTrainingTensor` sharing one :class:`RotationKeys`.
    """
    context.require_secret_key("encrypt a training set")
    if context.scheme != "ckks":
        raise SchemeError("Encrypted training runs on CKKS; create the context from CKKS parameters.")
    x, y_onehot = np.asarray(x, np.float64), np.asarray(y_onehot, np.float64)
    if x.ndim != 2 or y_onehot.ndim != 2 or len(x) != len(y_onehot) or not len(x):
        raise ShapeError(f"Expected x (samples, inputs) and one-hot y (samples, classes) with the same "
                         f"number of samples. Received shapes {x.shape} and {y_onehot.shape}.")
    if layout.slot_count != context.slot_count:
        raise ShapeError("The layout was made for another slot count than the context's parameters.")
    batches = minibatches(len(x), layout.batch_size)
    public = context.public()
    keys = RotationKeys.make(context, layout)
    tensors = []
    for values in (x, y_onehot):
        data = np.empty((1, len(batches), values.shape[1]), dtype=object)
        for m, (start, stop) in enumerate(batches):
            for f in range(values.shape[1]):
                data[0, m, f] = _encrypt(context, layout.sample_vector(values[start:stop, f]))
        largest = float(np.max(np.abs(values)))
        tensors.append(PackedTrainingTensor(public, data, (values.shape[1],), len(values),
                                            np.full(values.shape[1], bound or max(largest, 1.0)),
                                            layout, [stop - start for start, stop in batches], keys))
    return tuple(tensors)


def _encrypt(context, slots, public=False):
    component = context.components[0]
    plain, out = sealapi.Plaintext(), sealapi.Ciphertext(component.seal_context)
    component.encoder.encode(list(map(float, slots)), 2.0 ** context.parameters.scale_bits, plain)
    (component.encryptor.encrypt(plain, out) if public else component.encrypt(plain, out))
    return out


def _decode(context, ciphertext):
    component, plain = context.components[0], sealapi.Plaintext()
    component.decryptor.decrypt(ciphertext, plain)
    return np.array(component.encoder.decode_double(plain))


# ----------------------------------------------------------------- the model (server)
class EncryptedMLP:
    """The weights of Dense -> poly -> Dense as ciphertexts, and the SGD step on them.

    Args:
        context: a public (or private) CKKS context of the data owner's keys.
        weights: initial :class:`MLPWeights` (the server's own initialisation, encrypted here
            with the public key; after the first step they depend on the data).
        layout: the data's :class:`SlotLayout`.
        coefficients: (c0, c1, c2) of the activation with c2 != 0; (0, 0, 1) is Square.
    """

    def __init__(self, context, weights, layout, coefficients=SQUARE):
        coefficients = tuple(float(c) for c in coefficients)
        if len(coefficients) != 3 or coefficients[2] == 0:
            raise ValueError("Encrypted training supports activations c0 + c1 x + c2 x^2 with c2 != 0 "
                             f"(Square, or Poly of degree 2). Received coefficients {list(coefficients)}.")
        if weights.W1.shape[1] != layout.hidden_units:
            raise ShapeError(f"The layout is for {layout.hidden_units} hidden units; W1 has {weights.W1.shape[1]}.")
        self.context, self.layout, self.coefficients = context, layout, coefficients
        self.inputs, self.classes = weights.W1.shape[0], weights.W2.shape[1]
        self.counts = {"ct_ct": 0, "plain": 0, "rotations": 0}
        self.steps = 0
        unit = layout.unit_vector
        self.W1 = [_encrypt(context, unit(row), public=True) for row in weights.W1]
        self.b1 = _encrypt(context, unit(weights.b1), public=True)
        self.W2 = [_encrypt(context, unit(column), public=True) for column in weights.W2.T]
        self.b2 = [_encrypt(context, np.full(layout.slot_count, value), public=True) for value in weights.b2]

    # ----------------------------------------------------------------- state
    @property
    def ciphertexts(self):
        """Every weight ciphertext, in a fixed order (W1 rows, b1, W2 columns, b2)."""
        return self.W1 + [self.b1] + self.W2 + self.b2

    def set_ciphertexts(self, cts):
        d, k = self.inputs, self.classes
        self.W1, self.b1, self.W2, self.b2 = list(cts[:d]), cts[d], list(cts[d + 1:d + 1 + k]), list(cts[d + 1 + k:])

    @property
    def levels_left(self):
        """Rescalings left before the weights reach the base primes (which hold their integer part)."""
        component = self.context.components[0]
        base = self.context.parameters.base_primes - 1
        return min(component.chain_index(ct) for ct in self.ciphertexts) - base

    @property
    def levels_per_step(self):
        return levels_per_step(self.coefficients)

    def serialize(self):
        """The trained weights as bytes for the data owner (ciphertexts only: the server sends
        them back, the owner reads them with :meth:`from_bytes` and :meth:`decrypt`)."""
        header = {"key_id": self.context.key_id, "parameters": self.context.parameters.to_dict(),
                  "hidden_units": self.layout.hidden_units, "minibatch_size": self.layout.batch_size,
                  "inputs": self.inputs, "classes": self.classes, "coefficients": list(self.coefficients),
                  "steps": self.steps}
        io = SealObjectIO()
        return pack(TRAINED_WEIGHTS, header, [io.to_bytes(ct) for ct in self.ciphertexts])

    @classmethod
    def from_bytes(cls, data, context):
        """Rebuild weights written by :meth:`serialize` under ``context`` (the owner's)."""
        kind = TRAINED_WEIGHTS
        header, blobs = unpack(data, kind)
        if header.get("key_id") != context.key_id or header.get("parameters") != context.parameters.to_dict():
            raise SchemeError("These weights were encrypted under other keys or parameters than the given "
                              "context. Read them with the context of the data owner whose data trained them.")
        hidden = integer(kind, header, "hidden_units", 1, context.slot_count)
        minibatch = integer(kind, header, "minibatch_size", 1, context.slot_count)
        inputs = integer(kind, header, "inputs", 1, context.slot_count)
        classes = integer(kind, header, "classes", 1, context.slot_count)
        coefficients = header.get("coefficients")
        if not isinstance(coefficients, list) or len(coefficients) != 3 or not all(
                isinstance(c, (int, float)) and not isinstance(c, bool) for c in coefficients) or coefficients[2] == 0:
            refuse(kind, "coefficients", "3 numbers c0, c1, c2 with c2 != 0", coefficients)
        if len(blobs) != inputs + 1 + 2 * classes:
            raise SerializationError(f"The {kind} holds {len(blobs)} ciphertexts; {inputs} inputs and "
                                     f"{classes} classes need {inputs + 1 + 2 * classes}.")
        weights = cls.__new__(cls)
        weights.context, weights.coefficients = context, tuple(float(c) for c in coefficients)
        weights.layout = SlotLayout(hidden, minibatch, context.slot_count)
        weights.inputs, weights.classes = inputs, classes
        weights.counts, weights.steps = {"ct_ct": 0, "plain": 0, "rotations": 0}, integer(kind, header, "steps", 0)
        component, io = context.components[0], SealObjectIO()
        weights.set_ciphertexts([io.load(sealapi.Ciphertext(component.seal_context), component.seal_context, blob)
                                 for blob in blobs])
        return weights

    def decrypt(self, context):
        """Data owner: the weights as :class:`MLPWeights` (float64)."""
        context.require_secret_key("decrypt the weights")
        if context.key_id != self.context.key_id:
            raise PermissionError("These weights were encrypted under other keys than the given context's.")
        hidden = self.layout.hidden_units
        units = lambda ct: self.layout.read_units(_decode(context, ct))[:hidden]  # noqa: E731
        return MLPWeights(np.stack([units(ct) for ct in self.W1]), units(self.b1),
                          np.stack([units(ct) for ct in self.W2], axis=1),
                          np.array([float(np.mean(_decode(context, ct))) for ct in self.b2]))

    # ----------------------------------------------------------------- ciphertext helpers
    def _comp(self):
        return self.context.components[0]

    def _mul(self, a, b):
        """a * b, relinearised and rescaled (scales may differ: they multiply)."""
        self.counts["ct_ct"] += 1
        comp = self._comp()
        a, b = seal_ops.relinearized(comp, a), seal_ops.relinearized(comp, b)
        if comp.chain_index(a) > comp.chain_index(b):
            a = seal_ops.switch_to(comp, a, b)
        elif comp.chain_index(b) > comp.chain_index(a):
            b = seal_ops.switch_to(comp, b, a)
        out = seal_ops.new(comp)
        comp.evaluator.multiply(a, b, out)
        comp.evaluator.relinearize_inplace(out, comp.relin_keys)
        return seal_ops.rescale(comp, out)

    def _matched(self, a, b):
        """a and b at one level and exactly one scale (SEAL adds only those).

        Scales drift apart by parts per million along different paths (primes are not exactly
        2^scale_bits); the operand with levels to spare is multiplied by 1.0 encoded so that it
        lands exactly on the other's scale (as ``arithmetic.match_scales`` does for tensors).
        """
        comp = self._comp()
        if abs(a.scale - b.scale) <= seal_ops.SCALE_TOLERANCE * 1e-3 * max(a.scale, b.scale):
            return seal_ops.align(comp, a, b)
        swap = comp.chain_index(b) > comp.chain_index(a)
        high, low = (b, a) if swap else (a, b)
        if comp.chain_index(high) == comp.chain_index(low):
            if comp.chain_index(low) == 0:
                raise DepthExhaustedError("Two ciphertexts of different scales at the last level cannot be "
                                          "added; refresh the weights earlier.")
            low = seal_ops.switch_next(comp, low)
        while comp.chain_index(high) > comp.chain_index(low) + 1:
            high = seal_ops.switch_next(comp, high)
        one = seal_ops.ckks_plain(comp, 1.0, high, low.scale * comp.level_prime(high) / high.scale)
        high = seal_ops.rescale(comp, seal_ops.multiply_plain(comp, high, one))
        high.scale = low.scale  # equal up to float rounding of the encoding scale
        return (low, high) if swap else (high, low)

    def _add(self, a, b, subtract=False):
        comp = self._comp()
        a, b = self._matched(a, b)
        out = seal_ops.new(comp)
        (comp.evaluator.sub if subtract else comp.evaluator.add)(a, b, out)
        return out

    def _mulp(self, a, values):
        """a * plain (a scalar or a slot vector), rescaled back to a's scale."""
        self.counts["plain"] += 1
        comp = self._comp()
        plain = seal_ops.ckks_plain(comp, values if np.isscalar(values) else list(map(float, values)),
                                    a, comp.level_prime(a))
        return seal_ops.rescale(comp, seal_ops.multiply_plain(comp, a, plain))

    def _add_const(self, a, value):
        comp = self._comp()
        return seal_ops.add_plain(comp, a, seal_ops.ckks_plain(comp, float(value), a, a.scale))

    def _rotsum(self, a, steps, keys):
        comp = self._comp()
        for step in steps:
            self.counts["rotations"] += 1
            rotated = seal_ops.new(comp)
            comp.evaluator.rotate_vector(a, int(step), keys, rotated)
            out = seal_ops.new(comp)
            comp.evaluator.add(a, rotated, out)
            a = out
        return a

    def _sum(self, cts):
        total = cts[0]
        for ct in cts[1:]:
            total = self._add(total, ct)
        return total

    # ----------------------------------------------------------------- SGD
    def check_step(self, features, labels):
        """Raise unless (features, labels) fit this model and the weights have a step's levels."""
        for name, tensor, width in (("x", features, self.inputs), ("y", labels, self.classes)):
            if not isinstance(tensor, PackedTrainingTensor):
                raise TypeError(f"Expected `{name}` packed by encrypt_training_set. Received: {type(tensor).__name__}")
            if tensor.context.key_id != self.context.key_id:
                raise SchemeError(f"`{name}` was encrypted under other keys than the weights.")
            if tensor.shape[0] != width or tensor.layout.H * tensor.layout.B != self.layout.H * self.layout.B:
                raise ShapeError(f"`{name}` holds {tensor.shape[0]} columns in {tensor.layout!r}; the model needs "
                                 f"{width} in {self.layout!r}.")
        if self.levels_left < self.levels_per_step:
            raise DepthExhaustedError(
                f"An SGD step needs {self.levels_per_step} levels; the weights have {self.levels_left} left. "
                "Refresh them with the key holder first (fit(..., key_holder=...)), or select parameters "
                "with more steps per refresh.")

    def step(self, features, labels, batch, learning_rate):
        """One SGD step on minibatch ``batch`` of the packed (features, labels); updates in place."""
        self.check_step(features, labels)
        keys = features.rotation_keys.keys
        layout, (c0, c1, c2) = self.layout, self.coefficients
        x, y, n = list(features.data[0, batch]), list(labels.data[0, batch]), features.counts[batch]
        scale = learning_rate * 2.0 / (n * self.classes)
        valid = layout.sample_vector(np.ones(n))
        real_units = layout.unit_vector(np.ones(layout.hidden_units))
        # forward: z = x W1 + b1, a = f(z), out_k = a W2_k + b2_k
        z = self._add(self._sum([self._mul(xi, w) for xi, w in zip(x, self.W1)]), self.b1)
        if self.coefficients == SQUARE:
            u, slope = z, 2.0
            a = self._mul(u, u)
        else:  # c2 (z + c1/(2 c2))^2 + c0 - c1^2/(4 c2); f'(z) = 2 c2 (z + c1/(2 c2))
            u, slope = self._add_const(z, c1 / (2 * c2)), 2.0 * c2
            a = self._add_const(self._mulp(self._mul(u, u), c2), c0 - c1 * c1 / (4 * c2))
        mask = layout.first_unit_mask()
        d2 = []
        for k in range(self.classes):
            block = self._rotsum(self._mul(a, self.W2[k]), layout.unit_sum_steps(), keys)
            out = self._rotsum(self._mulp(block, mask), layout.spread_steps(), keys)
            d2.append(self._add(self._add(out, self.b2[k]), y[k], subtract=True))
        # backward with the old W2, then the updates
        d1 = self._mul(self._sum([self._mul(d, w) for d, w in zip(d2, self.W2)]), u)
        scaled_a = self._mulp(a, scale * valid * real_units)
        batch_steps = layout.batch_sum_steps()
        sub = lambda w, g: self._add(w, self._rotsum(g, batch_steps, keys), subtract=True)  # noqa: E731
        self.W2 = [sub(w, self._mul(scaled_a, d)) for w, d in zip(self.W2, d2)]
        self.b2 = [sub(b, self._mulp(d, scale * valid)) for b, d in zip(self.b2, d2)]
        self.W1 = [sub(w, self._mul(self._mulp(xi, slope * scale), d1)) for w, xi in zip(self.W1, x)]
        self.b1 = sub(self.b1, self._mulp(d1, slope * scale * valid * real_units))
        self.steps += 1

    def __repr__(self):
        return (f"<EncryptedMLP {self.inputs} -> {self.layout.hidden_units} -> {self.classes}, "
                f"{len(self.ciphertexts)} weight ciphertexts, {self.levels_left} levels left>")
