"""The HomomorphicEncryption.org security table: largest coefficient modulus per ring size.

Source: M. Albrecht et al., "Homomorphic Encryption Security Standard", HomomorphicEncryption.org,
Toronto, November 2018, Table 1 (classical security, uniform ternary secret, error standard
deviation 3.2). Microsoft SEAL ships the same figures as ``CoeffModulus::MaxBitCount``; a test
checks that the two agree, so a SEAL upgrade that changes them cannot go unnoticed.
"""

from .errors import ParameterError

SECURITY_LEVELS = (128, 192, 256)
RING_DEGREES = (1024, 2048, 4096, 8192, 16384, 32768)

# security bits -> {poly_modulus_degree n: largest total bit count of the coefficient modulus q}
MAX_COEFF_MODULUS_BITS = {
    128: {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881},
    192: {1024: 19, 2048: 37, 4096: 75, 8192: 152, 16384: 305, 32768: 611},
    256: {1024: 14, 2048: 29, 4096: 58, 8192: 118, 16384: 237, 32768: 476},
}

SOURCE = ("HomomorphicEncryption.org Security Standard (Albrecht et al., 2018), Table 1: "
          "classical security, ternary secret")


def check_security_level(security):
    """Return ``security`` as an int after checking it is a supported level.

    Raises:
        ParameterError: if ``security`` is not 128, 192 or 256.
    """
    if isinstance(security, bool) or security not in SECURITY_LEVELS:
        raise ParameterError(
            f"Expected `security` to be one of {list(SECURITY_LEVELS)} bits. "
            f"Received: security={security!r}")
    return int(security)


def max_coeff_modulus_bits(poly_modulus_degree, security=128):
    """Return the largest total coefficient-modulus bit count allowed for ``n`` and ``security``.

    Example:
        >>> max_coeff_modulus_bits(8192, 128)
        218
    """
    security = check_security_level(security)
    table = MAX_COEFF_MODULUS_BITS[security]
    if poly_modulus_degree not in table:
        raise ParameterError(
            f"Expected `poly_modulus_degree` to be one of {list(RING_DEGREES)}. "
            f"Received: poly_modulus_degree={poly_modulus_degree!r}")
    return table[poly_modulus_degree]
