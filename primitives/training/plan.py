"""The cost of one encrypted SGD step, and parameters for a stated number of steps per refresh.

Counts follow :mod:`primitives.backends.encrypted.training` exactly (its tests check them
against counters on real runs). Levels: a Square network's hidden-layer weights come back
``LEVELS_PER_STEP = 7`` levels lower after a step (x*W1, square, a*W2, mask, d2*W2, d1=back*z,
x*d1); a degree-2 Poly adds one (its leading coefficient).
"""

import math
from dataclasses import dataclass, field

from ..selection import select_parameters
from .layout import SlotLayout

LEVELS_PER_STEP = 7
SCALE_PRECISION_BITS = 24   # scale 2^38..2^44 with the selection's 14..20 guard bits: 7 levels stay in n = 16384
DEFAULT_MASK_BITS = 20      # statistical distance 2^-20 per weight and refresh
DEFAULT_WEIGHT_BOUND = 4.0  # |weight| the mask hides; the key holder refuses larger ones


def levels_per_step(coefficients):
    """Levels one step consumes: 7 for x^2, 8 for a polynomial with other coefficients."""
    return LEVELS_PER_STEP + (0 if tuple(coefficients) == (0.0, 0.0, 1.0) else 1)


def step_counts(inputs, hidden, classes, layout, coefficients=(0.0, 0.0, 1.0)):
    """Ciphertext-ciphertext products, plaintext products and rotations of one step."""
    square_only = tuple(coefficients) == (0.0, 0.0, 1.0)
    ct_ct = (inputs          # z = sum_i x_i * W1_i
             + 1             # a = z^2
             + classes       # a * W2_k
             + classes       # back = sum_k d2_k * W2_k
             + 1             # d1 = back * f'(z)
             + classes       # gW2_k = (a c) * d2_k
             + inputs)       # gW1_i = (x_i c) * d1
    plain = (classes                        # first-unit mask of each output sum
             + 1 + classes                  # a * c, d2_k * c (bias gradients)
             + inputs + 1                   # x_i * c, d1 * c
             + (1 if not square_only else 0))
    units, batch = len(layout.unit_sum_steps()), len(layout.batch_sum_steps())
    rotations = classes * 2 * units + (inputs + 1 + 2 * classes) * batch
    return ct_ct, plain, rotations


@dataclass(frozen=True)
class TrainingPlan:
    """What one encrypted SGD step costs, and how many steps the parameters hold between refreshes.

    Attributes:
        parameters: CKKS parameters from ``select_parameters`` (depth = levels_per_step * steps).
        layout: the :class:`SlotLayout`.
        inputs, hidden, classes: layer widths.
        coefficients: the activation polynomial (c0, c1, c2).
        levels_per_step: multiplicative depth one step uses.
        steps_per_refresh: steps that fit the parameters' levels (a fresh encryption).
        ct_ct_multiplications, plain_multiplications, rotations: per step.
        total_steps: steps the planned fit takes (epochs x minibatches), if known.
        mask_bits, weight_bound: refresh masks are uniform on [-R, R], R = weight_bound * 2^mask_bits.
    """

    parameters: object
    layout: SlotLayout
    inputs: int
    hidden: int
    classes: int
    coefficients: tuple
    levels_per_step: int
    steps_per_refresh: int
    ct_ct_multiplications: int
    plain_multiplications: int
    rotations: int
    total_steps: int | None = None
    mask_bits: int = DEFAULT_MASK_BITS
    weight_bound: float = DEFAULT_WEIGHT_BOUND
    notes: tuple = field(default=())

    @property
    def refreshes_needed(self):
        """Refresh round trips the planned fit needs (0: the data owner only encrypts once)."""
        if self.total_steps is None:
            return None
        return max(0, math.ceil(self.total_steps / self.steps_per_refresh) - 1)

    def __str__(self):
        p = self.parameters
        lines = [
            "Encrypted training plan (CKKS, batch x hidden units packed in slots)",
            f"  network: {self.inputs} -> {self.hidden} -> poly{list(self.coefficients)} -> {self.classes}, "
            "MSE on one-hot targets, SGD",
            f"  parameters: n={p.poly_modulus_degree}, scale 2^{p.scale_bits}, {p.depth} levels, "
            f"{p.security}-bit security",
            f"  layout: {self.layout!r}; rotation keys for steps {self.layout.galois_steps()}",
            f"  per SGD step: depth {self.levels_per_step}, {self.ct_ct_multiplications} ciphertext-ciphertext "
            f"multiplications, {self.plain_multiplications} plaintext multiplications, {self.rotations} rotations",
            f"  steps per refresh: {self.steps_per_refresh} (levels {p.depth} // {self.levels_per_step})",
        ]
        if self.total_steps is not None:
            refreshes = self.refreshes_needed
            lines.append(f"  planned: {self.total_steps} steps -> {refreshes} refresh round trip(s)"
                         + (" (zero refreshes: the data owner encrypts once)" if refreshes == 0 else
                            " with the key holder"))
        lines.append(f"  refresh masks: uniform on [-R, R], R = {self.weight_bound:g} * 2^{self.mask_bits} "
                     f"(statistical distance <= 2^-{self.mask_bits} per weight and refresh for |w| <= "
                     f"{self.weight_bound:g})")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


def plan_training(inputs, hidden, classes, batch_size, *, steps_per_refresh=1, total_steps=None,
                  coefficients=(0.0, 0.0, 1.0), security=128, mask_bits=DEFAULT_MASK_BITS,
                  weight_bound=DEFAULT_WEIGHT_BOUND, parameters=None, trial=True):
    """Select CKKS parameters holding ``steps_per_refresh`` SGD steps and count a step's work.

    Args:
        inputs, hidden, classes: widths of a Dense -> activation -> Dense network.
        batch_size: samples per minibatch.
        steps_per_refresh: SGD steps between two refreshes (pass ``total_steps`` for a run with
            no refresh at all).
        total_steps: steps of the planned fit (reported with the refreshes it needs).
        coefficients: (c0, c1, c2) of the activation; (0, 0, 1) is Square.
        mask_bits, weight_bound: the refresh mask (see :class:`TrainingPlan`); the base primes
            hold |w + mask| <= weight_bound * (2^mask_bits + 1).
        parameters: use these CKKS parameters instead of selecting them.

    Returns:
        TrainingPlan.
    """
    levels = levels_per_step(coefficients)
    if steps_per_refresh < 1:
        raise ValueError(f"Expected `steps_per_refresh` >= 1. Received: {steps_per_refresh!r}")
    integer_bits = math.ceil(math.log2(weight_bound)) + mask_bits + 1
    if parameters is None:
        parameters = select_parameters("ckks", depth=levels * steps_per_refresh, security=security,
                                       precision_bits=SCALE_PRECISION_BITS, integer_bits=integer_bits,
                                       trial=trial)
    elif parameters.scheme != "ckks":
        raise ValueError("Encrypted training runs on CKKS; pass CKKS parameters (or none to select them).")
    layout = SlotLayout(hidden, batch_size, parameters.slot_count)
    ct_ct, plain, rotations = step_counts(inputs, hidden, classes, layout, coefficients)
    return TrainingPlan(parameters, layout, inputs, hidden, classes, tuple(coefficients), levels,
                        parameters.depth // levels, ct_ct, plain, rotations, total_steps, mask_bits,
                        float(weight_bound))
