"""`SlotLayout`: where sample b and hidden unit j live in the slots of a training ciphertext.

Slot ``s`` holds hidden unit ``j = s % H`` of sample ``b = (s // H) % B`` (``H`` the hidden width
and ``B`` the batch, both padded to powers of two); the ``H * B`` block repeats across all slots
("tiles"). One ciphertext per input feature holds that feature of every sample, repeated over
``j``; one per hidden-layer weight row holds ``W1[i, :]`` repeated over ``b``. So a Dense layer
into the hidden units is one product per input (not per weight), the sum over the batch a
gradient needs is a rotate-and-sum with stride ``H`` (``log2 B`` rotations, exact in every slot
because the tiles repeat), and the sum over hidden units of the output layer is a rotate-and-sum
over one block, masked to its first slot and spread back (``2 log2 H`` rotations, one level).
"""

import math

import numpy as np

from ..errors import ShapeError


def next_power_of_two(n):
    return 1 << max(0, math.ceil(math.log2(max(1, n))))


def minibatches(samples, batch_size):
    """The (start, stop) of each minibatch, in order (the last may be shorter)."""
    return [(start, min(start + batch_size, samples)) for start in range(0, samples, batch_size)]


class SlotLayout:
    """Slot geometry for ``hidden`` units and minibatches of ``batch_size`` in ``slot_count`` slots.

    Raises:
        ShapeError: when one padded block (hidden x batch) does not fit the slots.
    """

    def __init__(self, hidden, batch_size, slot_count):
        self.hidden_units, self.batch_size, self.slot_count = int(hidden), int(batch_size), int(slot_count)
        self.H, self.B = next_power_of_two(hidden), next_power_of_two(batch_size)
        if self.H * self.B > slot_count:
            raise ShapeError(
                f"A minibatch of {batch_size} (padded to {self.B}) times {hidden} hidden units (padded to "
                f"{self.H}) needs {self.H * self.B} slots; the parameters give {slot_count}. Use a "
                f"batch_size of at most {slot_count // self.H}, or parameters with a larger ring.")

    # ----------------------------------------------------------------- slot index maps
    @property
    def sample_of_slot(self):
        return (np.arange(self.slot_count) // self.H) % self.B

    @property
    def unit_of_slot(self):
        return np.arange(self.slot_count) % self.H

    def sample_vector(self, values):
        """Slots holding ``values[b]`` (length <= B, zero-padded), repeated over hidden units."""
        padded = np.zeros(self.B)
        padded[:len(values)] = values
        return padded[self.sample_of_slot]

    def unit_vector(self, values):
        """Slots holding ``values[j]`` (length <= H, zero-padded), repeated over samples."""
        padded = np.zeros(self.H)
        padded[:len(values)] = values
        return padded[self.unit_of_slot]

    def first_unit_mask(self):
        """1 in the slots of hidden unit 0, else 0 (keeps a block sum, drops partial sums)."""
        return (self.unit_of_slot == 0).astype(float)

    def read_units(self, slots):
        """Per-unit values of a unit-pattern vector: the mean over its copies (length H)."""
        slots = np.asarray(slots, dtype=float)[:self.slot_count]
        return np.bincount(self.unit_of_slot, weights=slots, minlength=self.H) / (self.slot_count / self.H)

    # ----------------------------------------------------------------- rotations
    def unit_sum_steps(self):
        """Left rotations summing a block of H units into its first slot."""
        return [1 << k for k in range(int(math.log2(self.H)))]

    def spread_steps(self):
        """Right rotations (negative steps) copying a block's first slot over its H slots."""
        return [-(1 << k) for k in range(int(math.log2(self.H)))]

    def batch_sum_steps(self):
        """Left rotations (stride H) summing over the B samples of every slot."""
        return [self.H << k for k in range(int(math.log2(self.B)))]

    def galois_steps(self):
        """Every rotation a training step uses (the data owner makes keys for these only)."""
        return sorted(set(self.unit_sum_steps() + self.spread_steps() + self.batch_sum_steps()))

    def __repr__(self):
        return (f"<SlotLayout {self.H} units x {self.B} samples per block, "
                f"{self.slot_count // (self.H * self.B)} tiles in {self.slot_count} slots>")
