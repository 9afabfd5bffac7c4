"""heras: a Keras-like API for models that train on plaintext and infer on encrypted data.

Not yet written: see the project issues. Layers will call only `primitives` ops.
"""
