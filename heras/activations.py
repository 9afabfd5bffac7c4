"""Activations by name: "square" and "poly" have encrypted forms; Keras' others train only.

``get("square")`` returns a callable that runs on TensorFlow tensors, numpy arrays and
`EncryptedTensor`s alike (through primitives ops). A Keras activation such as "relu" works in
training, and raises a clear error, naming the polynomial alternatives, on ciphertexts.
"""

import copy

import keras

import primitives as P

DEFAULT_POLY = (0.25, 0.5, 0.125)  # 0.25 + x/2 + x^2/8: a smooth, ReLU-like low-degree activation


class HerasActivation:
    """A named activation with its encryption cost."""

    name = "linear"
    encryptable = True

    def __call__(self, x):
        return x

    def multiplications(self):
        """Ciphertext-ciphertext multiplications per feature."""
        return 0

    def depth(self):
        """Ciphertext multiplications on the path (BFV depth)."""
        return 0

    def ckks_depth(self):
        """Rescalings on the path (CKKS depth)."""
        return self.depth()

    def serialize(self):
        return self.name

    def __repr__(self):
        return f"<activation {self.serialize()}>"


class Square(HerasActivation):
    name = "square"

    def __call__(self, x):
        return P.square(x)

    def multiplications(self):
        return 1

    def depth(self):
        return 1


def power_depth(power):
    """Ciphertext multiplications on the path of x^power as ``primitives.polynomial`` builds it
    (x^2k = (x^k)^2, x^(k+1) = x^k * x)."""
    if power <= 1:
        return 0
    return power_depth(power // 2 if power % 2 == 0 else power - 1) + 1


def polynomial_depth(degree):
    """Depth of a polynomial of ``degree`` (every power up to it may be needed): the deepest
    power, e.g. 3 for degree 4 or 5 .. 6, 4 for degree 7."""
    return max((power_depth(k) for k in range(1, degree + 1)), default=0)


class Poly(HerasActivation):
    """sum_k coefficients[k] x^k with fixed coefficients.

    BFV preparation sets ``integer_coefficients`` (the polynomial on integers at the input's
    scale, see ``heras.models.preparation``); they replace the real coefficients off the
    training path.
    """

    name = "poly"
    integer_coefficients = None

    def __init__(self, coefficients=DEFAULT_POLY):
        if len(coefficients) < 2:
            raise ValueError(f"Expected at least 2 poly coefficients. Received: {list(coefficients)}")
        self.coefficients = tuple(float(c) for c in coefficients)

    def __call__(self, x):
        if self.integer_coefficients is not None and not P.ops.is_framework_tensor(x):
            return P.polynomial(x, self.integer_coefficients)
        return P.polynomial(x, self.coefficients)

    def multiplications(self):
        degree = len(self.coefficients) - 1
        return degree - 1 if degree > 1 else 0

    def depth(self):
        return polynomial_depth(len(self.coefficients) - 1)

    def ckks_depth(self):
        return self.depth() + 1  # the coefficients multiply at a scale: one more rescaling

    def serialize(self):
        return {"poly": list(self.coefficients)} if self.coefficients != DEFAULT_POLY else "poly"


class PlaintextOnly(HerasActivation):
    """A Keras activation (relu, softmax, ...): trains, but has no encrypted form."""

    encryptable = False

    def __init__(self, name):
        self.name = name
        self.function = keras.activations.get(name)

    def __call__(self, x):
        if P.is_encrypted(x):
            raise NotImplementedError(
                f"{self.name} has no encrypted form; use heras.layers.Square or heras.layers.Poly "
                "(or activation='square' / 'poly') instead.")
        return self.function(x)


def get(identifier):
    """Resolve an activation from a name, a {"poly": [coefficients]} mapping, or an instance."""
    if identifier is None or identifier == "linear":
        return HerasActivation()
    if isinstance(identifier, HerasActivation):
        return copy.copy(identifier)  # per layer: BFV preparation stores layer-specific coefficients
    if identifier == "square":
        return Square()
    if identifier == "poly":
        return Poly()
    if isinstance(identifier, dict) and set(identifier) == {"poly"}:
        return Poly(identifier["poly"])
    if isinstance(identifier, str):
        try:
            keras.activations.get(identifier)
        except ValueError:
            raise ValueError(f"Unknown activation {identifier!r}. Use 'square', 'poly', 'linear' or "
                             "a Keras activation name.") from None
        return PlaintextOnly(identifier)
    raise ValueError(f"Expected an activation name or {{'poly': [...]}}. Received: {identifier!r}")


def serialize(activation):
    return activation.serialize()


def multiplications(activation):
    return activation.multiplications()


def bfv_depth(activation):
    return activation.depth()


def ckks_depth(activation):
    return activation.ckks_depth()
