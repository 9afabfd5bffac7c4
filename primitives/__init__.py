"""Encrypted algebra for neural networks: BFV (exact, CRT) and CKKS on Microsoft SEAL.

The public surface: parameters (:func:`select_parameters`, :class:`Parameters`), keys
(:class:`Context`), data (:class:`EncryptedTensor`, :func:`encrypt`, :func:`decrypt`) and ops
that run on numpy arrays and on encrypted tensors alike (:mod:`primitives.ops`).
"""

__version__ = "0.1.0"

from . import parallel, progress
from .bound_tensor import BoundTensor
from .context import Context
from .encrypted_tensor import EncryptedTensor
from .errors import (DepthExhaustedError, NoiseBudgetExhaustedError, OverflowRiskError,
                     ParameterError, SchemeError, SealionError, SecretKeyError,
                     SerializationError, ShapeError)
from .ops import (add, avg_pool2d, conv2d, decrypt, encrypt, flatten, is_encrypted, matmul,
                  multiply, negate, polynomial, reshape, square, subtract, sum, sum_pool2d)
from .parameters import Parameters
from .selection import explain, select_parameters

__all__ = [
    "Context", "EncryptedTensor", "BoundTensor", "Parameters", "select_parameters", "explain",
    "encrypt", "decrypt", "is_encrypted",
    "add", "subtract", "negate", "multiply", "square", "polynomial",
    "matmul", "conv2d", "sum_pool2d", "avg_pool2d", "reshape", "flatten", "sum",
    "SealionError", "ParameterError", "SchemeError", "ShapeError", "OverflowRiskError",
    "DepthExhaustedError", "NoiseBudgetExhaustedError", "SecretKeyError", "SerializationError",
]
