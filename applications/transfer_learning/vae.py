"""An HE-friendly variational autoencoder: a heras encoder (runs encrypted) and a Keras decoder.

The encoder is a heras functional model: linear layers and polynomial activations (the
``trunk``, e.g. Flatten -> Dense 64 -> Square) and two Dense heads, the latent mean ``z_mean``
and log-variance ``z_log_var``. The decoder maps a latent code back to pixel logits with any
Keras layers: it only ever runs in plaintext (on the client, on decrypted codes). :class:`VAE`
trains both with the usual ELBO (Bernoulli reconstruction + KL to N(0, I)) through Keras' own
machinery (a custom ``train_step``: ``fit`` with progress bars, callbacks, validation).

After training, :func:`mean_encoder` extracts the mean head as a one-output heras model
(:func:`heras.models.extract`), which prepares for BFV or CKKS like any other heras model.
"""

import math

import keras
import numpy as np
import tensorflow as tf

import heras
from heras.layers import Dense, Flatten, Input, Square

MEAN, LOG_VARIANCE = "z_mean", "z_log_var"


def default_trunk(hidden_units=64):
    """Flatten -> Dense(hidden_units) -> Square: one ciphertext product per hidden unit."""
    return [Flatten(), Dense(hidden_units), Square()]


def build_encoder(input_shape, latent_dim=16, trunk=None, name="encoder"):
    """The heras encoder: ``trunk`` layers then the ``z_mean`` and ``z_log_var`` Dense heads.

    Args:
        input_shape: per-sample input shape, e.g. (28, 28, 1).
        latent_dim: size of the latent code.
        trunk: heras layers applied in order before the heads (default :func:`default_trunk`).
    """
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"Expected `latent_dim` to be a positive integer. Received: latent_dim={latent_dim!r}")
    inputs = Input(tuple(input_shape))
    h = inputs
    for layer in (default_trunk() if trunk is None else trunk):
        h = layer(h)
    if len(h.shape) != 2:
        raise ValueError(f"The encoder trunk must end in flat features (batch, units); it ends in shape "
                         f"{tuple(h.shape)}. Add a Flatten before the heads.")
    # the log-variance head starts at zero (unit variance): early KL terms stay small
    log_var = Dense(latent_dim, name=LOG_VARIANCE, kernel_initializer="zeros")(h)
    return heras.models.Model(inputs, [Dense(latent_dim, name=MEAN)(h), log_var], name=name)


def build_decoder(latent_dim, output_shape, hidden_units=(256,), name="decoder"):
    """A plaintext Keras decoder: latent code -> ReLU hidden layers -> pixel logits."""
    layers = [keras.Input((latent_dim,))]
    layers += [keras.layers.Dense(int(units), activation="relu") for units in hidden_units]
    layers += [keras.layers.Dense(math.prod(output_shape)), keras.layers.Reshape(tuple(output_shape))]
    return keras.Sequential(layers, name=name)


class VAE(keras.Model):
    """Variational autoencoder trained with ``fit(x)`` on unlabelled images in [0, 1].

    The loss per image is the ELBO's negative: the Bernoulli cross-entropy of the pixels
    given the decoded sample z = mean + exp(log_var / 2) * eps, summed over pixels, plus
    ``beta`` times KL(q(z|x) || N(0, I)). ``fit`` reports ``loss``, ``reconstruction`` and
    ``kl`` (means per image). ``call(x)`` reconstructs from the mean: pixel probabilities.

    Args:
        encoder: a model returning ``[z_mean, z_log_var]`` (:func:`build_encoder`).
        decoder: a model from latent codes to pixel logits (:func:`build_decoder`).
        beta: weight of the KL term (1: the usual ELBO).
    """

    def __init__(self, encoder, decoder, beta=1.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.beta = encoder, decoder, float(beta)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "reconstruction", "kl")}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        mean, _ = self.encoder(x, training=training)
        return tf.sigmoid(self.decoder(mean, training=training))

    def losses_for(self, x, training=False):
        """(reconstruction, kl): per-image means over the batch ``x``."""
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        mean, log_var = self.encoder(x, training=training)
        log_var = tf.clip_by_value(log_var, -12.0, 8.0)  # exp() stays finite early in training
        z = mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
        logits = self.decoder(z, training=training)
        pixels = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.reshape(x, tf.shape(logits)), logits=logits)
        reconstruction = tf.reduce_mean(tf.reduce_sum(tf.reshape(pixels, (tf.shape(x)[0], -1)), axis=1))
        kl = tf.reduce_mean(tf.reduce_sum(0.5 * (tf.square(mean) + tf.exp(log_var) - 1.0 - log_var), axis=1))
        return reconstruction, kl

    def train_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        with tf.GradientTape() as tape:
            reconstruction, kl = self.losses_for(x, training=True)
            loss = reconstruction + self.beta * kl
        gradients = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self._track(loss, reconstruction, kl)

    def test_step(self, data):
        x = data[0] if isinstance(data, tuple) else data
        reconstruction, kl = self.losses_for(x)
        return self._track(reconstruction + self.beta * kl, reconstruction, kl)

    def _track(self, loss, reconstruction, kl):
        for name, value in (("loss", loss), ("reconstruction", reconstruction), ("kl", kl)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def __repr__(self):
        return (f"<VAE: heras encoder {self.encoder.name} -> latent {self.encoder.outputs[0].shape[-1]}, "
                f"Keras decoder {self.decoder.name}, beta={self.beta:g}>")


def train_vae(vae, x, epochs=10, batch_size=128, learning_rate=1e-3, validation_split=0.0, verbose="auto"):
    """Compile (Adam, gradients clipped to norm 1) and ``fit`` the VAE on unlabelled images ``x``."""
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0))
    return vae.fit(np.asarray(x, dtype=np.float32), epochs=epochs, batch_size=batch_size,
                   validation_split=validation_split, verbose=verbose, shuffle=True)


def mean_encoder(vae_or_encoder, name="mean_encoder"):
    """The encoder's mean head as a one-output heras model (copies of the trained layers),
    ready for ``prepare_encryption``: the part of the VAE the server runs on ciphertexts."""
    encoder = getattr(vae_or_encoder, "encoder", vae_or_encoder)
    return heras.models.extract(encoder, MEAN, name=name)


def reconstruct(decoder, latents):
    """Pixel probabilities the (plaintext) decoder gives for latent codes (client side)."""
    logits = decoder.predict(np.asarray(latents, dtype=np.float32), batch_size=1024, verbose=0)
    return 1.0 / (1.0 + np.exp(-logits))
