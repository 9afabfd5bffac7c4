"""The client's few-label classifier: multinomial logistic regression in numpy.

The same classifier (same regularisation, same steps) runs on decrypted latent codes and on
raw pixels, so the difference in accuracy is the representation's. Features are centred per
feature and scaled by one overall deviation, both from the training examples alone (with k = 1
label per class there are 10; a per-feature deviation would blow up pixels that are constant
in them).
Full-batch gradient descent with Adam steps: deterministic, and fast for a few hundred examples.
"""

import numpy as np


class LogisticRegression:
    """Softmax regression with an L2 penalty ``l2`` on the weights.

    Args:
        l2: weight decay (per example averaged loss + l2/2 * |W|^2).
        steps: full-batch Adam steps.
        learning_rate: Adam step size.
    """

    def __init__(self, l2=1e-3, steps=500, learning_rate=0.05):
        if l2 < 0 or steps < 1 or learning_rate <= 0:
            raise ValueError(f"Expected l2 >= 0, steps >= 1, learning_rate > 0. Received: l2={l2}, "
                             f"steps={steps}, learning_rate={learning_rate}")
        self.l2, self.steps, self.learning_rate = float(l2), int(steps), float(learning_rate)
        self.weights = None

    def fit(self, x, y, classes=None):
        """Train on features ``x`` (n, ...) and integer labels ``y``; returns self."""
        x, y = self._features(x, fit=True), np.asarray(y, dtype=np.int64).reshape(-1)
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"Expected as many labels as examples (> 0). Received: {len(x)} examples, "
                             f"{len(y)} labels.")
        self.classes = int(classes or y.max() + 1)
        onehot = np.eye(self.classes)[y]
        w = np.zeros((x.shape[1] + 1, self.classes))
        m, v = np.zeros_like(w), np.zeros_like(w)
        xb = np.hstack([x, np.ones((len(x), 1))])
        for step in range(1, self.steps + 1):
            p = _softmax(xb @ w)
            gradient = xb.T @ (p - onehot) / len(x)
            gradient[:-1] += self.l2 * w[:-1]
            m = 0.9 * m + 0.1 * gradient
            v = 0.999 * v + 0.001 * gradient ** 2
            w -= self.learning_rate * (m / (1 - 0.9 ** step)) / (np.sqrt(v / (1 - 0.999 ** step)) + 1e-8)
        self.weights = w
        return self

    def predict(self, x):
        """Class labels for features ``x``."""
        if self.weights is None:
            raise RuntimeError("Call fit(x, y) before predict.")
        x = self._features(x)
        return np.argmax(np.hstack([x, np.ones((len(x), 1))]) @ self.weights, axis=1)

    def score(self, x, y):
        """Accuracy on ``(x, y)``."""
        return float(np.mean(self.predict(x) == np.asarray(y).reshape(-1)))

    def _features(self, x, fit=False):
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if fit:
            self.mean = x.mean(axis=0)
            self.std = float(np.sqrt(np.mean((x - self.mean) ** 2))) or 1.0
        return (x - self.mean) / self.std

    def __repr__(self):
        return f"LogisticRegression(l2={self.l2:g}, steps={self.steps}, learning_rate={self.learning_rate:g})"


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
