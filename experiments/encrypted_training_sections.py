"""The config section of ``kind: encrypted_training`` (a plain dataclass: no TensorFlow import)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EncryptedTrainingConfig:
    """How to train on ciphertexts (the ``training`` section gives epochs, batch_size,
    learning_rate and seed; ``encryption.security`` the security level).

    Attributes:
        steps_per_refresh: SGD steps the CKKS parameters hold between two masked refreshes
            (1 fits n = 16384; ``null``: every step of the run, i.e. no refresh at all).
        mask_bits: refresh masks are uniform on [-R, R], R = weight_bound * 2^mask_bits.
        weight_bound: |weight| the masks hide (the key holder refuses larger values).
        test_fraction: Iris only: share held out for testing (150 samples; 0.2 = 30).
    """

    steps_per_refresh: int | None = 1
    mask_bits: int = 20
    weight_bound: float = 4.0
    test_fraction: float = 0.2
