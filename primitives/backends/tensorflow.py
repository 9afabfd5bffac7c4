"""TensorFlow backend (through ``keras.ops``): the plain ops on TensorFlow and Keras tensors.

Used when an operand is a TensorFlow tensor, variable or symbolic Keras tensor, so a heras layer
written with primitives ops trains with TensorFlow's autodiff. Same signatures as
:mod:`primitives.backends.plain`; imported lazily (TensorFlow takes seconds to load).
"""

from keras import ops as K


def add(x, y):
    return K.add(x, y)


def subtract(x, y):
    return K.subtract(x, y)


def negate(x):
    return K.negative(x)


def multiply(x, y):
    return K.multiply(x, y)


def square(x):
    return K.multiply(x, x)


def polynomial(x, coefficients):
    result = K.zeros_like(x) + coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = result * x + c
    return result


def matmul(x, kernel, bias=None):
    out = K.matmul(x, K.cast(kernel, x.dtype))
    return out if bias is None else out + K.cast(bias, x.dtype)


def conv2d(x, kernel, bias=None, strides=(1, 1), padding="valid"):
    out = K.conv(x, K.cast(kernel, x.dtype), strides=strides, padding=padding, data_format="channels_last")
    return out if bias is None else out + K.cast(bias, x.dtype)


def sum_pool2d(x, pool_size, strides, padding="valid"):
    channels = x.shape[-1]
    ones = K.ones(tuple(pool_size) + (channels, 1), dtype=x.dtype)
    return K.depthwise_conv(x, ones, strides=strides, padding=padding, data_format="channels_last")


def avg_pool2d(x, pool_size, strides, padding="valid"):
    return K.average_pool(x, pool_size, strides=strides, padding=padding, data_format="channels_last")


def reshape(x, shape):
    return K.reshape(x, (-1,) + tuple(shape))


def sum(x, axes):  # noqa: A001 - mirrors numpy/keras naming
    return K.sum(x, axis=tuple(a + 1 for a in axes))
