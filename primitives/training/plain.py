"""The plaintext oracle: the SGD an encrypted run performs, in float64 numpy.

Network: ``out = (x @ W1 + b1)**2 @ W2 + b2`` (or a polynomial activation), loss: mean squared
error against one-hot targets, averaged over the samples of the minibatch and the classes (as
Keras' ``MeanSquaredError``). Plain SGD, no momentum: one step is

    d2 = out - y;  c = 2 / (n * K)
    W2 -= lr * c * a.T @ d2;      b2 -= lr * c * sum(d2)
    d1 = (d2 @ W2.T) * f'(z)
    W1 -= lr * c * x.T @ d1;      b1 -= lr * c * sum(d1)

with the backward pass using W2 before its update (as every autodiff framework does).
"""

from dataclasses import dataclass

import numpy as np

from .layout import minibatches


@dataclass
class MLPWeights:
    """Weights of a one-hidden-layer MLP: W1 (d, H), b1 (H,), W2 (H, K), b2 (K,)."""

    W1: np.ndarray
    b1: np.ndarray
    W2: np.ndarray
    b2: np.ndarray

    def copy(self):
        return MLPWeights(*(np.array(w, dtype=np.float64) for w in self.as_tuple()))

    def as_tuple(self):
        return (self.W1, self.b1, self.W2, self.b2)

    def max_relative_error(self, other):
        """max |self - other| / max |other| over all four arrays (0 when equal)."""
        scale = max(float(np.max(np.abs(w))) for w in other.as_tuple()) or 1.0
        return max(float(np.max(np.abs(a - b))) for a, b in zip(self.as_tuple(), other.as_tuple())) / scale


def activate(z, coefficients):
    """f(z) and f'(z) for the polynomial sum_k c_k z^k."""
    value = sum(c * z ** k for k, c in enumerate(coefficients))
    slope = sum(k * c * z ** (k - 1) for k, c in enumerate(coefficients) if k)
    return value, slope


def predict(weights, x, coefficients=(0.0, 0.0, 1.0)):
    """The network's outputs for ``x`` (float64)."""
    a, _ = activate(np.asarray(x, np.float64) @ weights.W1 + weights.b1, coefficients)
    return a @ weights.W2 + weights.b2


def plain_step(weights, x, y, learning_rate, coefficients=(0.0, 0.0, 1.0)):
    """One SGD step on the minibatch (x, y one-hot), in place; returns the minibatch loss."""
    n, classes = y.shape
    z = x @ weights.W1 + weights.b1
    a, slope = activate(z, coefficients)
    d2 = a @ weights.W2 + weights.b2 - y
    c = learning_rate * 2.0 / (n * classes)
    d1 = (d2 @ weights.W2.T) * slope
    weights.W2 -= c * a.T @ d2
    weights.b2 -= c * d2.sum(axis=0)
    weights.W1 -= c * x.T @ d1
    weights.b1 -= c * d1.sum(axis=0)
    return float(np.mean(d2 ** 2))


def plain_sgd(weights, x, y, epochs, batch_size, learning_rate, coefficients=(0.0, 0.0, 1.0)):
    """Train a copy of ``weights`` on (x, one-hot y), minibatches in order; returns (weights, losses)."""
    weights = weights.copy()
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    losses = []
    for _ in range(epochs):
        for start, stop in minibatches(len(x), batch_size):
            losses.append(plain_step(weights, x[start:stop], y[start:stop], learning_rate, coefficients))
    return weights, losses
