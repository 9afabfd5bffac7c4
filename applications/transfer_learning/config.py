"""The ``transfer_learning`` kind's own config sections, ``vae`` and ``transfer`` (docs/configs.md).

Plain dataclasses with no heavy imports: reading a config stays light. The encoder's trunk is
the config's ``model.layers`` (heras layers); the heads, the decoder and the VAE loss are here.
"""

from dataclasses import dataclass

from experiments.config import ConfigError


@dataclass(frozen=True)
class VAEConfig:
    """The VAE around the encoder trunk (``model.layers``).

    Attributes:
        latent_dim: size of the latent code (the encrypted encoder's outputs).
        decoder_units: hidden ReLU layers of the plaintext decoder.
        beta: weight of the KL term (1: the usual ELBO).
        pool_samples: images in the unlabelled pool (default: every training image before
            the labelled split).
    """

    latent_dim: int = 16
    decoder_units: tuple = (256,)
    beta: float = 1.0
    pool_samples: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "decoder_units", tuple(self.decoder_units))
        _at_least("vae.latent_dim", self.latent_dim, 1)
        if self.pool_samples is not None:
            _at_least("vae.pool_samples", self.pool_samples, 1)
        if not all(isinstance(u, int) and not isinstance(u, bool) and u >= 1 for u in self.decoder_units):
            raise ConfigError(f"vae.decoder_units: expected a list of positive integers (hidden layer "
                              f"widths), e.g. [256]. Found {list(self.decoder_units)}.")
        if self.beta <= 0:
            raise ConfigError(f"vae.beta: expected a positive number (1 is the usual ELBO). Found {self.beta}.")


@dataclass(frozen=True)
class TransferConfig:
    """The client's side: its labelled split, how many labels it uses, its classifier.

    Attributes:
        labelled_samples: the client's labelled split, the last training images (disjoint
            from the unlabelled pool the VAE trains on).
        labels_per_class: values of k; each draw takes k labelled examples per class.
        draws: random draws per k (accuracies are their mean).
        classifier_l2: L2 penalty of the logistic regression (the same on latents and pixels).
        classifier_steps: its full-batch Adam steps.
        reconstructions: test images shown beside their reconstructions in the PNG.
    """

    labelled_samples: int = 10000
    labels_per_class: tuple = (1, 10, 100)
    draws: int = 5
    classifier_l2: float = 0.01
    classifier_steps: int = 500
    reconstructions: int = 10

    def __post_init__(self):
        object.__setattr__(self, "labels_per_class", tuple(self.labels_per_class))
        _at_least("transfer.labelled_samples", self.labelled_samples, 1)
        _at_least("transfer.draws", self.draws, 1)
        _at_least("transfer.classifier_steps", self.classifier_steps, 1)
        _at_least("transfer.reconstructions", self.reconstructions, 0)
        ks = self.labels_per_class
        if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
            raise ConfigError(f"transfer.labels_per_class: expected a list of positive integers, e.g. "
                              f"[1, 10, 100]. Found {list(ks)}.")
        if self.classifier_l2 < 0:
            raise ConfigError(f"transfer.classifier_l2: expected a number >= 0. Found {self.classifier_l2}.")


def _at_least(key, value, low):
    if value < low:
        raise ConfigError(f"{key}: expected an integer >= {low}. Found {value}.")
