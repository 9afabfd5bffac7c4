"""Translate SEAL's terse exceptions into sealion errors that say what happened and what to do."""

import functools

from ...errors import DepthExhaustedError, OverflowRiskError, SchemeError, SealionError

# substring of SEAL's message -> (sealion error class, explanation and fix)
KNOWN = [
    ("scale out of bounds", OverflowRiskError,
     "the CKKS scale outgrew the remaining coefficient modulus. Select parameters with more "
     "levels or a smaller scale (select_parameters('ckks', depth=..., precision_bits=...))."),
    ("end of modulus switching chain reached", DepthExhaustedError,
     "no CKKS level is left for this rescaling. Select parameters with a larger depth."),
    ("not valid for encryption parameters", SchemeError,
     "a ciphertext or key belongs to other encryption parameters. Use tensors and contexts "
     "made from the same Parameters."),
    ("scale mismatch", SchemeError,
     "CKKS operands have different scales. Combine tensors that took the same path."),
    ("mismatch", SchemeError,
     "the operands live at different levels or under different parameters."),
    ("transparent", SchemeError,
     "SEAL refused a ciphertext that would reveal its value (a multiplication by zero)."),
]


def translate(op, error):
    """Return a sealion error for SEAL's ``error`` raised inside ``op``."""
    message = str(error)
    for fragment, kind, explanation in KNOWN:
        if fragment in message:
            return kind(f"{op}: {explanation} (SEAL said: {message})")
    return SealionError(f"{op}: SEAL refused the operation: {message}. Check that all operands "
                        "come from the same context and that the parameters fit the computation.")


def translated(function):
    """Decorate an encrypted-backend op so raw SEAL errors never reach the user."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except (SealionError, NotImplementedError):
            raise
        except (ValueError, RuntimeError) as error:
            raise translate(function.__name__, error) from error
    return wrapper
