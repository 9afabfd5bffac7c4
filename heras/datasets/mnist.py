"""MNIST digits: 60,000 + 10,000 images of 28x28 uint8, labels 0-9 (like keras.datasets.mnist)."""

from ._files import archive_loader

load_data = archive_loader("mnist.npz", "mnist")
