"""heras: a Keras-like API for models that train on plaintext and infer on encrypted data.

Layers are Keras layers whose computation is ``primitives`` ops, so one definition trains with
TensorFlow and runs on ciphertexts; heras never imports TenSEAL.
"""

from . import activations, datasets, deployment, execution, layers, models

__all__ = ["activations", "datasets", "deployment", "execution", "layers", "models"]
