"""`Parameters`: a validated, serialisable description of one BFV or CKKS configuration."""

import dataclasses
import json
import math
from dataclasses import dataclass, field

from .errors import ParameterError
from .security import RING_DEGREES, check_security_level, max_coeff_modulus_bits

SCHEMES = ("bfv", "ckks")
MAX_PRIME_BITS = 60  # SEAL caps every coefficient and plaintext prime at 60 bits


def check_scheme(scheme):
    """Return ``scheme`` lower-cased after checking it names a supported scheme."""
    if not isinstance(scheme, str) or scheme.lower() not in SCHEMES:
        raise ParameterError(
            f"Expected `scheme` to be one of {list(SCHEMES)}. Received: scheme={scheme!r}")
    return scheme.lower()


def is_prime(value):
    """Return True when ``value`` is prime (deterministic Miller-Rabin, exact below 2^64)."""
    if value < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if value % p == 0:
            return value == p
    d, r = value - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, value)
        if x in (1, value - 1):
            continue
        for _ in range(r - 1):
            x = x * x % value
            if x == value - 1:
                break
        else:
            return False
    return True


@dataclass(frozen=True)
class Parameters:
    """Encryption parameters for one scheme, checked against the security table.

    Build them with :func:`primitives.select_parameters` rather than by hand; hand-made
    parameters are validated all the same (ring degree, security bound, prime moduli).

    Attributes:
        scheme: ``"bfv"`` (exact integers) or ``"ckks"`` (approximate reals).
        poly_modulus_degree: ring degree n; BFV packs n values per ciphertext, CKKS n/2.
        coeff_mod_bit_sizes: bit sizes of the coefficient-modulus primes, the last one being
            SEAL's special (key-switching) prime.
        plain_moduli: BFV only: the CRT plaintext primes t_i (each = 1 mod 2n).
        scale_bits: CKKS only: log2 of the encoding scale.
        security: classical security level in bits (128, 192 or 256).
        depth: multiplicative depth the parameters were chosen for (BFV: ciphertext-
            ciphertext multiplications; CKKS: rescaling multiplications).
        max_value: BFV: bound on |value| the parameters were chosen for.
        linear_bits: BFV: log2 of the l1-norm of plaintext weights allowed between two
            ciphertext multiplications (noise growth of dense and convolution layers).
        noise_margin_bits: BFV: noise budget (bits) the selection keeps in reserve.
        precision_bits, integer_bits: CKKS: fractional bits of precision asked for and
            log2 of the largest |value|.
        amplification_bits: CKKS: extra scale bits for a computation that amplifies each op's
            error by up to 2^amplification_bits (None: no such analysis was given).
        base_primes: CKKS: primes left after the last rescaling (the first one, or more when
            scale + integer bits exceed one 60-bit prime); always 1 for BFV.
        notes: human-readable reasons recorded by the selection (not compared).
    """

    scheme: str
    poly_modulus_degree: int
    coeff_mod_bit_sizes: tuple
    plain_moduli: tuple = ()
    scale_bits: int | None = None
    security: int = 128
    depth: int = 0
    max_value: int | None = None
    linear_bits: float | None = None
    noise_margin_bits: float | None = None
    precision_bits: int | None = None
    integer_bits: int | None = None
    amplification_bits: int | None = None
    base_primes: int = 1
    notes: tuple = field(default=(), compare=False)

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("scheme", check_scheme(self.scheme))
        set_("security", check_security_level(self.security))
        n = self.poly_modulus_degree
        if n not in RING_DEGREES:
            raise ParameterError(
                f"Expected `poly_modulus_degree` to be one of {list(RING_DEGREES)}. "
                f"Received: poly_modulus_degree={n!r}")
        bits = tuple(int(b) for b in self.coeff_mod_bit_sizes)
        if len(bits) < 2 or any(not 2 <= b <= MAX_PRIME_BITS for b in bits):
            raise ParameterError(
                "Expected `coeff_mod_bit_sizes` to list at least two primes (data primes and "
                f"SEAL's special prime), each 2..{MAX_PRIME_BITS} bits. Received: {list(bits)}")
        set_("coeff_mod_bit_sizes", bits)
        limit = max_coeff_modulus_bits(n, self.security)
        if sum(bits) > limit:
            raise ParameterError(
                f"coeff_mod_bit_sizes {list(bits)} total {sum(bits)} bits, but n={n} allows at "
                f"most {limit} bits at {self.security}-bit security. Use fewer or smaller primes "
                "or a larger poly_modulus_degree.")
        plain = tuple(int(t) for t in self.plain_moduli)
        set_("plain_moduli", plain)
        set_("notes", tuple(str(x) for x in self.notes))
        if self.scheme == "bfv":
            self._check_bfv(plain, n)
        else:
            self._check_ckks(plain, bits)

    def _check_bfv(self, plain, n):
        if not plain:
            raise ParameterError("BFV parameters need `plain_moduli`: one or more primes t_i "
                                 "with t_i = 1 mod 2n (use select_parameters to choose them).")
        for t in plain:
            if t >= 2 ** MAX_PRIME_BITS or not is_prime(t) or t % (2 * n) != 1:
                raise ParameterError(
                    f"Plaintext modulus {t} must be a prime below 2^{MAX_PRIME_BITS} with "
                    f"t = 1 mod 2n = 1 mod {2 * n} so that SIMD batching works.")
        if len(set(plain)) != len(plain):
            raise ParameterError(f"`plain_moduli` must be distinct for CRT. Received: {plain}")
        if self.scale_bits is not None or self.amplification_bits is not None or self.base_primes != 1:
            raise ParameterError("`scale_bits`, `amplification_bits` and `base_primes` are CKKS "
                                 "settings; BFV parameters must not set them.")

    def _check_ckks(self, plain, bits):
        if plain:
            raise ParameterError("`plain_moduli` is a BFV setting; CKKS parameters must not set it.")
        if self.scale_bits is None or not 10 <= self.scale_bits <= MAX_PRIME_BITS:
            raise ParameterError(
                f"CKKS parameters need `scale_bits` between 10 and {MAX_PRIME_BITS}. "
                f"Received: scale_bits={self.scale_bits!r}")
        if len(bits) < 2:
            raise ParameterError("CKKS needs at least a first prime and a special prime.")
        if isinstance(self.base_primes, bool) or not isinstance(self.base_primes, int) or \
                not 1 <= self.base_primes <= len(bits) - 1:
            raise ParameterError(f"Expected `base_primes` to be an integer from 1 to {len(bits) - 1} "
                                 f"(the data primes). Received: base_primes={self.base_primes!r}")

    # ----------------------------------------------------------------- derived quantities
    @property
    def slot_count(self):
        """Values packed per ciphertext: n for BFV, n/2 for CKKS."""
        n = self.poly_modulus_degree
        return n if self.scheme == "bfv" else n // 2

    @property
    def plain_modulus_product(self):
        """T = prod(t_i): BFV decrypts exactly every integer in (-T/2, T/2)."""
        return math.prod(self.plain_moduli) if self.plain_moduli else None

    @property
    def max_exact_value(self):
        """Largest |value| BFV represents exactly: (T - 1) // 2."""
        product = self.plain_modulus_product
        return None if product is None else (product - 1) // 2

    @property
    def levels(self):
        """CKKS: rescalings available (data primes minus the base, usually the first prime)."""
        return len(self.coeff_mod_bit_sizes) - 1 - self.base_primes

    @property
    def coeff_modulus_bits(self):
        """Total bits of the coefficient modulus, special prime included."""
        return sum(self.coeff_mod_bit_sizes)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self):
        """Return the parameters as plain data (lists, ints, strings) for JSON or YAML."""
        data = dataclasses.asdict(self)
        data["coeff_mod_bit_sizes"] = list(self.coeff_mod_bit_sizes)
        data["plain_moduli"] = list(self.plain_moduli)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data):
        """Build parameters from :meth:`to_dict` output; unknown keys are an error."""
        if not isinstance(data, dict):
            raise ParameterError(f"Expected a mapping of parameter fields. Received: {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ParameterError(f"Unknown parameter keys {unknown}; valid keys are {sorted(known)}.")
        missing = sorted({"scheme", "poly_modulus_degree", "coeff_mod_bit_sizes"} - set(data))
        if missing:
            raise ParameterError(f"Missing parameter keys {missing}.")
        return cls(**data)

    def to_json(self):
        """Return the parameters as a JSON string."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text):
        """Parse parameters written by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ParameterError(f"Parameters are not valid JSON: {err}") from err
        return cls.from_dict(data)

    def to_yaml(self):
        """Return the parameters as a YAML document."""
        import yaml
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text):
        """Parse parameters written by :meth:`to_yaml` (``yaml.safe_load``)."""
        import yaml
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ParameterError(f"Parameters are not valid YAML: {err}") from err
        return cls.from_dict(data)

    def __str__(self):
        n = self.poly_modulus_degree
        head = (f"{self.scheme.upper()} parameters, {self.security}-bit security: n={n}, "
                f"log q={self.coeff_modulus_bits} bits {list(self.coeff_mod_bit_sizes)}")
        if self.scheme == "bfv":
            body = (f"plaintext moduli {list(self.plain_moduli)} "
                    f"(exact for |x| <= {self.max_exact_value}, ~2^{math.log2(self.max_exact_value):.1f}), "
                    f"depth {self.depth}, {self.slot_count} slots")
        else:
            body = (f"scale 2^{self.scale_bits}, {self.levels} levels, depth {self.depth}, "
                    f"{self.slot_count} slots")
        return "\n".join([head, "  " + body] + ["  - " + note for note in self.notes])

    def __repr__(self):
        extra = (f"plain_moduli={list(self.plain_moduli)}" if self.scheme == "bfv"
                 else f"scale_bits={self.scale_bits}")
        return (f"Parameters(scheme={self.scheme!r}, poly_modulus_degree={self.poly_modulus_degree}, "
                f"coeff_mod_bit_sizes={list(self.coeff_mod_bit_sizes)}, {extra}, "
                f"security={self.security}, depth={self.depth})")
