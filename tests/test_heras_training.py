"""Training defaults suited to square activations; explicit choices stay as given."""

import math

import keras
import numpy as np

from heras.layers import Conv2D, Dense, Input, Square
from heras.layers.base import DEFAULT_INIT_SCALE
from heras.models import Model, Sequential, load_model
from heras.models.training import DEFAULT_CLIPNORM, DEFAULT_LEARNING_RATE


def test_dense_and_conv_default_to_small_fan_in_kernels():
    for layer in (Dense(4), Conv2D(2, 3)):
        init = layer.kernel_initializer
        assert isinstance(init, keras.initializers.VarianceScaling)
        assert (init.scale, init.mode, init.distribution) == (DEFAULT_INIT_SCALE, "fan_in", "truncated_normal")
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.kernel_initializer.get_config() == init.get_config()
    assert isinstance(Dense(4, kernel_initializer="glorot_uniform").kernel_initializer,
                      keras.initializers.GlorotUniform)
    keras.utils.set_random_seed(0)
    kernel = np.asarray(Sequential([Input((784,)), Dense(30)]).layers[0].kernel)
    assert abs(kernel.std() - math.sqrt(DEFAULT_INIT_SCALE / 784)) < 0.1 * math.sqrt(DEFAULT_INIT_SCALE / 784)


def test_compile_defaults_and_explicit_choices():
    model = Sequential([Input((4,)), Dense(3), Square(), Dense(2)])
    model.compile(loss="sparse_categorical_crossentropy")
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.clipnorm == DEFAULT_CLIPNORM
    assert math.isclose(float(model.optimizer.learning_rate), DEFAULT_LEARNING_RATE, rel_tol=1e-6)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.loss.get_config()["from_logits"] is True          # heras models output logits
    model.compile(optimizer="heras", loss="mse")
    assert model.optimizer.clipnorm == DEFAULT_CLIPNORM and model.loss == "mse"
    explicit = keras.losses.SparseCategoricalCrossentropy()
    model.compile(optimizer="adam", loss=explicit)
    assert model.optimizer.clipnorm is None and model.loss is explicit
    probabilities = Sequential([Input((4,)), Dense(2, activation="softmax")])
    probabilities.compile(loss="categorical_crossentropy")
    assert probabilities.loss == "categorical_crossentropy"       # already probabilities
    inputs = Input((4,))
    functional = Model(inputs, Dense(2)(Square()(Dense(3)(inputs))))
    functional.compile(loss="binary_crossentropy")
    assert functional.optimizer.clipnorm == DEFAULT_CLIPNORM and functional.loss.get_config()["from_logits"]


class RecordRate(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.rates = getattr(self, "rates", []) + [float(self.model.optimizer.learning_rate)]


def test_default_optimizer_anneals_by_cosine_over_each_fit(rng, tmp_path):
    keras.utils.set_random_seed(1)
    model = Sequential([Input((6,)), Dense(8), Square(), Dense(3)])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = rng.uniform(0, 1, size=(64, 6)).astype("float32"), rng.integers(0, 3, size=64)
    recorder = RecordRate()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[recorder])   # 8 steps
    expected = [DEFAULT_LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]
    np.testing.assert_allclose(recorder.rates, expected, rtol=1e-5)
    recorder.rates = []
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[recorder])   # a new cycle
    np.testing.assert_allclose(recorder.rates, [DEFAULT_LEARNING_RATE, DEFAULT_LEARNING_RATE / 2], rtol=1e-5)
    explicit = Sequential([Input((6,)), Dense(3)])
    explicit.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    recorder = RecordRate()
    explicit.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[recorder])
    np.testing.assert_allclose(recorder.rates, [0.01, 0.01], rtol=1e-6)   # an explicit rate stays
    model.save(tmp_path / "m.keras")
    assert np.isfinite(load_model(tmp_path / "m.keras").predict(x, verbose=0)).all()
