"""`Context`: keys and SEAL machinery for one set of parameters (one SEAL context per CRT prime)."""

import uuid

from tenseal import sealapi

from .errors import ParameterError, SecretKeyError, SerializationError
from .headers import check_context_header
from .parameters import Parameters
from .serialization import SealObjectIO, pack, read_file, unpack, write_file


_SEC_LEVELS = {128: sealapi.SEC_LEVEL_TYPE.TC128, 192: sealapi.SEC_LEVEL_TYPE.TC192,
               256: sealapi.SEC_LEVEL_TYPE.TC256}


def new_seal_context(parameters, plain_modulus=None):
    """A SEAL context for ``parameters`` (and one BFV plaintext prime), checked by SEAL too."""
    scheme = sealapi.SCHEME_TYPE.BFV if parameters.scheme == "bfv" else sealapi.SCHEME_TYPE.CKKS
    parms = sealapi.EncryptionParameters(scheme)
    n = parameters.poly_modulus_degree
    parms.set_poly_modulus_degree(n)
    parms.set_coeff_modulus(sealapi.CoeffModulus.Create(n, list(parameters.coeff_mod_bit_sizes)))
    if plain_modulus is not None:
        parms.set_plain_modulus(plain_modulus)
    context = sealapi.SEALContext(parms, True, _SEC_LEVELS[parameters.security])
    if not context.parameters_set():
        raise ParameterError(f"SEAL rejected the parameters {parameters!r}: "
                             f"{context.parameters_error_message()}")
    return context


class SealComponent:
    """The SEAL objects of one BFV plaintext prime, or of the CKKS context.

    Holds the evaluator, encoder, public-key encryptor, relinearisation keys and, only in a
    private context, the secret key with its decryptor and symmetric encryptor. Built on
    TenSEAL's ``sealapi`` bindings of SEAL itself; keys are serialised in SEAL's own format.
    """

    KEYS = ("public_key", "relin_keys", "secret_key")

    def __init__(self, seal_context, public_key, relin_keys, secret_key=None):
        self.seal_context = seal_context
        self.public_key, self.relin_keys, self.secret_key = public_key, relin_keys, secret_key
        self.evaluator = sealapi.Evaluator(seal_context)
        self.encryptor = sealapi.Encryptor(seal_context, public_key)
        self.decryptor = self.symmetric_encryptor = None
        if secret_key is not None:
            self.decryptor = sealapi.Decryptor(seal_context, secret_key)
            # The client encrypts with its secret key: cheaper, less noise, same security.
            self.symmetric_encryptor = sealapi.Encryptor(seal_context, secret_key)
        first = seal_context.first_context_data()
        self.coeff_moduli = [m.value() for m in first.parms().coeff_modulus()]
        plain = first.parms().plain_modulus()
        self.plain_modulus = plain.value() if plain.value() else None
        self.encoder = (sealapi.BatchEncoder(seal_context) if self.plain_modulus
                        else sealapi.CKKSEncoder(seal_context))
        self.cache = {}  # BFV constant plaintexts by value (small integers repeat across weights)

    @classmethod
    def generate(cls, seal_context):
        """Fresh keys for ``seal_context``."""
        keygen = sealapi.KeyGenerator(seal_context)
        public_key, relin_keys = sealapi.PublicKey(), sealapi.RelinKeys()
        keygen.create_public_key(public_key)
        keygen.create_relin_keys(relin_keys)
        return cls(seal_context, public_key, relin_keys, keygen.secret_key())

    def key_blobs(self, io, save_secret_key):
        names = self.KEYS if save_secret_key else self.KEYS[:2]
        return [io.to_bytes(getattr(self, name)) for name in names]

    @classmethod
    def from_key_blobs(cls, seal_context, io, blobs):
        kinds = (sealapi.PublicKey, sealapi.RelinKeys, sealapi.SecretKey)
        keys = [io.load(kind(), seal_context, blob) for kind, blob in zip(kinds, blobs)]
        return cls(seal_context, *keys)

    def encrypt(self, plain, out):
        """Encrypt ``plain`` into ``out``: symmetric with the secret key when held, else public."""
        if self.symmetric_encryptor is not None:
            self.symmetric_encryptor.encrypt_symmetric(plain, out)
        else:
            self.encryptor.encrypt(plain, out)

    def chain_index(self, ciphertext):
        """Return the level of ``ciphertext``: how many rescalings it can still take."""
        return self.seal_context.get_context_data(ciphertext.parms_id()).chain_index()

    def level_prime(self, ciphertext):
        """Return the coefficient prime the next rescaling of ``ciphertext`` divides by."""
        data = self.seal_context.get_context_data(ciphertext.parms_id())
        return data.parms().coeff_modulus()[-1].value()


class Context:
    """Encryption keys and SEAL state for one :class:`Parameters`.

    ``Context(parameters)`` generates fresh keys and holds the secret key: it is the client's
    context. :meth:`public` returns a copy without the secret key for the server. BFV with k
    plaintext primes holds k SEAL contexts (one per CRT prime), each with its own keys. Keys
    are serialised in SEAL's own format (not TenSEAL's protobuf, which crashes when
    TensorFlow's protobuf was loaded first).

    Example:
        >>> params = select_parameters("bfv", depth=1, max_value=2**20)
        >>> client = Context(params)
        >>> server = client.public()
        >>> server.has_secret_key
        False
    """

    def __init__(self, parameters, *, _components=None, _key_id=None):
        if not isinstance(parameters, Parameters):
            raise TypeError("Expected `parameters` to be a primitives.Parameters (from "
                            f"select_parameters). Received: {type(parameters).__name__}")
        self.parameters = parameters
        self.key_id = _key_id or uuid.uuid4().hex
        self.components = _components or [SealComponent.generate(c) for c in _seal_contexts(parameters)]

    # ----------------------------------------------------------------- properties
    @property
    def scheme(self):
        """``"bfv"`` or ``"ckks"``."""
        return self.parameters.scheme

    @property
    def has_secret_key(self):
        """True for the client's context, False for a public (server) context."""
        return all(c.decryptor is not None for c in self.components)

    @property
    def slot_count(self):
        """Batch entries packed per ciphertext."""
        return self.parameters.slot_count

    def require_secret_key(self, action="decrypt"):
        """Raise SecretKeyError unless this context holds the secret key."""
        if not self.has_secret_key:
            raise SecretKeyError(
                f"Cannot {action}: this is a public context without the secret key (as a server "
                "holds). Only the client's context, the one that generated the keys, can "
                f"{action}; send the result back to the client.")

    # ----------------------------------------------------------------- public copy
    def public(self):
        """Return a context with the same public keys but no secret key (for a server)."""
        return Context.from_bytes(self.serialize(save_secret_key=False))

    # ----------------------------------------------------------------- serialisation
    def serialize(self, *, save_secret_key=False):
        """Return the context as bytes; the secret key is left out unless asked for.

        Args:
            save_secret_key: include the secret key (only for the client's own storage).
        """
        if save_secret_key:
            self.require_secret_key("serialise the secret key")
        io = SealObjectIO()
        blobs = [blob for c in self.components for blob in c.key_blobs(io, save_secret_key)]
        header = {"parameters": self.parameters.to_dict(), "key_id": self.key_id,
                  "has_secret_key": bool(save_secret_key)}
        return pack("context", header, blobs)

    @classmethod
    def from_bytes(cls, data):
        """Rebuild a context from :meth:`serialize` output."""
        header, blobs = unpack(data, "context")
        parameters = check_context_header(header)
        contexts = _seal_contexts(parameters)
        per_component = 3 if header["has_secret_key"] else 2
        if len(blobs) != per_component * len(contexts):
            raise SerializationError(
                f"The context holds {len(blobs)} keys; its parameters need {per_component * len(contexts)}.")
        io = SealObjectIO()
        components = [SealComponent.from_key_blobs(context, io, blobs[i * per_component:(i + 1) * per_component])
                      for i, context in enumerate(contexts)]
        return cls(parameters, _components=components, _key_id=header["key_id"])

    def save(self, path, *, save_secret_key=False):
        """Write the context to ``path`` (atomically); the secret key only if asked for."""
        write_file(path, self.serialize(save_secret_key=save_secret_key))

    @classmethod
    def load(cls, path):
        """Read a context written by :meth:`save`."""
        return cls.from_bytes(read_file(path, "context"))

    def __repr__(self):
        role = "private (client, holds the secret key)" if self.has_secret_key else "public (no secret key)"
        p = self.parameters
        moduli = f", t={list(p.plain_moduli)}" if p.scheme == "bfv" else f", scale=2^{p.scale_bits}"
        return f"<Context {p.scheme.upper()} n={p.poly_modulus_degree}{moduli}, {role}>"


def _seal_contexts(parameters):
    """One SEAL context per BFV plaintext prime, or one CKKS context."""
    if parameters.scheme == "bfv":
        return [new_seal_context(parameters, t) for t in parameters.plain_moduli]
    return [new_seal_context(parameters)]
