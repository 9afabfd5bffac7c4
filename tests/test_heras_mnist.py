"""DNN-30 (784 -> Dense 30 -> Square -> Dense 10) trains on real MNIST to SEALion's accuracy.

Needs mnist.npz through SEALION_DATA (CI sets it to ../shared/data).
"""

import os

import keras
import numpy as np
import pytest

import heras
from heras.layers import Dense, Input, Square
from heras.models import Sequential

pytestmark = pytest.mark.skipif(not os.environ.get("SEALION_DATA"),
                                reason="SEALION_DATA is not set: no MNIST on this machine")


def test_dnn30_reaches_97_percent_on_mnist():
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = heras.datasets.mnist.load_data()
    x_train = x_train.reshape(-1, 784).astype("float32") / 255
    x_test = x_test.reshape(-1, 784).astype("float32") / 255
    small = keras.initializers.RandomNormal(stddev=0.02)  # keeps squares small early in training
    model = Sequential([Input((784,)), Dense(30, kernel_initializer=small), Square(), Dense(10)])
    epochs, batch = 15, 128
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * (len(x_train) // batch))
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"DNN-30 MNIST test accuracy: {accuracy:.4f}")
    assert accuracy >= 0.97
    assert np.isfinite(model.predict(x_test[:10], verbose=0)).all()
