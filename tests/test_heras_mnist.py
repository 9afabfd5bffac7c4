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


def test_dnn30_reaches_97_percent_on_mnist_with_the_defaults():
    """heras' defaults only: kernel initialiser, clipped cosine-annealed Adam, logits loss."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = heras.datasets.mnist.load_data()
    x_train = x_train.reshape(-1, 784).astype("float32") / 255
    x_test = x_test.reshape(-1, 784).astype("float32") / 255
    model = Sequential([Input((784,)), Dense(30), Square(), Dense(10)])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=15, batch_size=128, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"DNN-30 MNIST test accuracy: {accuracy:.4f}")
    assert accuracy >= 0.97
    assert np.isfinite(model.predict(x_test[:10], verbose=0)).all()
