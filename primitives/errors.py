"""Exceptions raised by sealion: each names what went wrong and how to fix it."""


class SealionError(Exception):
    """Base class of every error sealion raises on purpose."""


class ParameterError(SealionError, ValueError):
    """Encryption parameters are invalid, or no parameters can satisfy a request."""


class SchemeError(SealionError, TypeError):
    """An operation mixed schemes or contexts, or the scheme cannot do it."""


class ShapeError(SealionError, ValueError):
    """Operand shapes do not fit the operation."""


class OverflowRiskError(SealionError, ArithmeticError):
    """A BFV result could reach the plaintext modulus and wrap around silently."""


class DepthExhaustedError(SealionError, ArithmeticError):
    """An operation needs more multiplicative depth (levels or noise budget) than is left."""


class NoiseBudgetExhaustedError(SealionError, ArithmeticError):
    """A ciphertext's noise budget ran out: its decryption would be garbage."""


class SecretKeyError(SealionError, PermissionError):
    """A secret-key operation (decryption) was asked of a context without the secret key."""


class SerializationError(SealionError, ValueError):
    """Bytes or a file are not a valid sealion artifact (wrong kind, version, or corrupted)."""
