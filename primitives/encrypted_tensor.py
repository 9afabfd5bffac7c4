"""`EncryptedTensor`: a batch of encrypted feature tensors, the batch packed across SIMD slots."""

import math

import numpy as np
from tenseal import sealapi

from .errors import SchemeError, SerializationError
from .noise import fresh_budget_bits
from .serialization import SealObjectIO, pack, read_file, unpack, write_file


class EncryptedTensor:
    """Ciphertexts for a tensor of logical shape ``(batch_size, *shape)``.

    Layout (CryptoNets / SEALion): one ciphertext per feature, per CRT component, per group of
    ``slot_count`` batch entries; sample b of the batch lives in slot ``b % slot_count`` of group
    ``b // slot_count``. Element-wise ops and linear layers therefore act feature by feature
    with no rotations.

    Attributes:
        context: the :class:`Context` whose keys encrypted it (public or private).
        shape: per-sample feature shape.
        batch_size: number of samples.
        data: object array ``(components, groups, features)`` of SEAL ciphertexts.
        bound: per-feature bound on |value| (BFV: exact ints; CKKS: floats), proven by
            propagating the input bound through every op.
        noise_used_bits: BFV: estimated noise budget consumed, per CRT component.
        depth_used: ciphertext-ciphertext multiplications on the longest path so far.
    """

    def __init__(self, context, data, shape, batch_size, bound, noise_used_bits=None, depth_used=0):
        self.context = context
        self.data = data
        self.shape = tuple(int(s) for s in shape)
        self.batch_size = int(batch_size)
        self.bound = bound
        components = len(context.components)
        self.noise_used_bits = (np.zeros(components) if noise_used_bits is None
                                else np.asarray(noise_used_bits, dtype=float))
        self.depth_used = int(depth_used)

    # ----------------------------------------------------------------- metadata
    @property
    def scheme(self):
        return self.context.scheme

    @property
    def size(self):
        """Number of features per sample."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def groups(self):
        """Ciphertext groups the batch is split into (``ceil(batch_size / slot_count)``)."""
        return self.data.shape[1]

    @property
    def ciphertext_count(self):
        return int(self.data.size)

    @property
    def max_bound(self):
        """Largest per-feature bound (0 for an empty tensor)."""
        return max(self.bound.tolist()) if self.size else 0

    @property
    def levels_left(self):
        """CKKS: rescalings still possible (min over ciphertexts); BFV: None."""
        if self.scheme != "ckks":
            return None
        component = self.context.components[0]
        return min(component.chain_index(ct) for ct in self.data.ravel())

    @property
    def depth_left(self):
        """BFV: ciphertext multiplications left of the depth the parameters were chosen for."""
        return self.context.parameters.depth - self.depth_used if self.scheme == "bfv" else None

    @property
    def noise_budget_estimate_bits(self):
        """BFV: estimated noise budget left (bits, min over CRT components); CKKS: None."""
        return self.estimated_budget_bits(self.noise_used_bits) if self.scheme == "bfv" else None

    def estimated_budget_bits(self, noise_used_bits):
        """BFV: the budget (bits) that would be left after consuming ``noise_used_bits``."""
        params = self.context.parameters
        data_bits = sum(params.coeff_mod_bit_sizes[:-1])
        fresh = [fresh_budget_bits(params.poly_modulus_degree, data_bits, t) for t in params.plain_moduli]
        return float(np.min(np.asarray(fresh) - noise_used_bits))

    def noise_budget(self, context=None):
        """BFV: the true smallest noise budget in bits, measured with the secret key.

        Args:
            context: the client's private context (default: the tensor's own context), so a
                client can measure a result computed under a public context.
        """
        context = context or self.context
        context.require_secret_key("measure the noise budget")
        if context.key_id != self.context.key_id:
            raise SchemeError("This tensor was encrypted under other keys than the given context's.")
        if self.scheme != "bfv":
            raise SchemeError("Noise budgets are a BFV notion; CKKS tracks levels (levels_left).")
        # a tensor of some CRT components only (a worker's part) pairs each with the client's
        # component of the same plaintext prime
        by_prime = {comp.plain_modulus: comp for comp in context.components}
        own = [by_prime[comp.plain_modulus] for comp in self.context.components]
        return min(comp.decryptor.invariant_noise_budget(ct)
                   for comp, block in zip(own, self.data) for ct in block.ravel())

    def check_same_keys(self, other):
        """Raise SchemeError unless ``other`` was encrypted under the same keys."""
        if self.context.key_id != other.context.key_id:
            raise SchemeError(
                "The two encrypted tensors belong to different contexts (different keys); they "
                "cannot be combined. Encrypt both with the same Context, or its public() copy.")
        if self.batch_size != other.batch_size:
            raise SchemeError(f"Batch sizes differ: {self.batch_size} vs {other.batch_size}. "
                              "Encrypted tensors combine only sample by sample.")

    # ----------------------------------------------------------------- operators
    def __add__(self, other):
        from . import ops
        return ops.add(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        from . import ops
        return ops.subtract(self, other)

    def __rsub__(self, other):
        from . import ops
        return ops.subtract(other, self)

    def __mul__(self, other):
        from . import ops
        return ops.multiply(self, other)

    __rmul__ = __mul__

    def __neg__(self):
        from . import ops
        return ops.negate(self)

    def __matmul__(self, kernel):
        from . import ops
        return ops.matmul(self, kernel)

    # ----------------------------------------------------------------- serialisation
    def serialize(self):
        """Return the tensor as bytes: ciphertexts in SEAL's format plus checked metadata."""
        io = SealObjectIO()
        blobs = [io.to_bytes(ct) for ct in self.data.ravel()]
        header = {"scheme": self.scheme, "shape": list(self.shape), "batch_size": self.batch_size,
                  "layout": list(self.data.shape), "key_id": self.context.key_id,
                  "parameters": self.context.parameters.to_dict(),
                  "bound": [str(b) for b in self.bound.tolist()],
                  "noise_used_bits": self.noise_used_bits.tolist(), "depth_used": self.depth_used}
        return pack("tensor", header, blobs)

    @classmethod
    def from_bytes(cls, data, context):
        """Rebuild a tensor from :meth:`serialize` output, under ``context`` (public or private)."""
        header, blobs = unpack(data, "tensor")
        if header["key_id"] != context.key_id or header["parameters"] != context.parameters.to_dict():
            raise SchemeError(
                "This encrypted tensor was made under other keys or parameters than the given "
                "context. Load it with the context (or public copy) of the client that encrypted it.")
        layout = tuple(header["layout"])
        if math.prod(layout) != len(blobs) or layout[0] != len(context.components):
            raise SerializationError("The tensor's ciphertext count does not match its layout.")
        io, cts = SealObjectIO(), np.empty(len(blobs), dtype=object)
        per_component = len(blobs) // layout[0]
        for i, blob in enumerate(blobs):
            component = context.components[i // per_component]
            cts[i] = io.load(sealapi.Ciphertext(component.seal_context), component.seal_context, blob)
        kind = int if header["scheme"] == "bfv" else float
        bound = np.array([kind(b) for b in header["bound"]], dtype=object if kind is int else float)
        return cls(context, cts.reshape(layout), header["shape"], header["batch_size"], bound,
                   header["noise_used_bits"], header["depth_used"])

    def save(self, path):
        """Write the tensor to ``path`` atomically."""
        write_file(path, self.serialize())

    @classmethod
    def load(cls, path, context):
        """Read a tensor written by :meth:`save`."""
        return cls.from_bytes(read_file(path, "tensor"), context)

    def __repr__(self):
        extra = (f"levels_left={self.levels_left}" if self.scheme == "ckks"
                 else f"max_bound={self.max_bound}, depth_used={self.depth_used}")
        return (f"<EncryptedTensor {self.scheme.upper()} shape=(batch={self.batch_size}, "
                f"{', '.join(map(str, self.shape))}), {self.ciphertext_count} ciphertexts, {extra}>")
