"""The numpy oracle against TensorFlow: the two plain backends agree on every op, and ops
dispatch to TensorFlow for TensorFlow tensors (so heras layers train with autodiff)."""

import numpy as np
import pytest

import primitives as P

tf = pytest.importorskip("tensorflow")

CASES = [
    ("add", lambda m, x, k: m.add(x, 0.5 * x)),
    ("subtract", lambda m, x, k: m.subtract(x, 2.0)),
    ("negate", lambda m, x, k: m.negate(x)),
    ("multiply", lambda m, x, k: m.multiply(x, x)),
    ("square", lambda m, x, k: m.square(x)),
    ("polynomial", lambda m, x, k: m.polynomial(x, [0.5, -1.0, 0.25])),
    ("conv2d valid s1", lambda m, x, k: m.conv2d(x, k, bias=[0.1, -0.2, 0.3])),
    ("conv2d same s2", lambda m, x, k: m.conv2d(x, k, strides=2, padding="same")),
    ("sum_pool2d valid", lambda m, x, k: m.sum_pool2d(x, 2)),
    ("sum_pool2d same s1", lambda m, x, k: m.sum_pool2d(x, 3, strides=1, padding="same")),
    ("avg_pool2d same", lambda m, x, k: m.avg_pool2d(x, 2, strides=2, padding="same")),
    ("reshape+matmul", lambda m, x, k: m.matmul(m.flatten(x), np.ones((98, 4)) / 7, bias=[1.0] * 4)),
    ("sum", lambda m, x, k: m.sum(x, axis=(1, 2))),
]


@pytest.mark.parametrize("name, fn", CASES, ids=[c[0] for c in CASES])
def test_numpy_and_tensorflow_agree(name, fn):
    rng = np.random.default_rng(7)
    x = rng.normal(size=(3, 7, 7, 2))
    kernel = rng.normal(size=(3, 3, 2, 3))
    expected = fn(P, x, kernel)
    result = fn(P, tf.constant(x, dtype=tf.float64), kernel)
    assert tf.is_tensor(result)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-10, atol=1e-10)


def test_gradients_flow_through_tensorflow_dispatch():
    w = tf.Variable(np.ones((4, 2)))
    x = tf.constant(np.arange(8.0).reshape(2, 4))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(P.square(P.matmul(x, w)))
    gradient = tape.gradient(loss, w).numpy()
    np.testing.assert_allclose(gradient, (2 * x.numpy().T @ (x.numpy() @ np.ones((4, 2)))))
