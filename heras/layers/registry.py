"""`register_layer`: how an application makes its own layers known by name.

A registered layer is a Keras serializable (saved and loaded with the model, as
``package>ClassName``) and is found by :func:`get_layer_class`, which ``sealion run``
configs use to resolve ``model.layers`` entries: heras' own layers first, then the
registered ones (by class name or ``package>ClassName``).
"""

import keras

_REGISTERED = {}


def register_layer(package):
    """Class decorator: register an :class:`~heras.layers.EncryptableLayer` under ``package``.

    Example:
        >>> @register_layer(package="myapp")
        ... class MyGate(PositionGate): ...
    """
    def decorate(cls):
        from .base import EncryptableLayer
        if not (isinstance(cls, type) and issubclass(cls, EncryptableLayer) and issubclass(cls, keras.layers.Layer)):
            raise TypeError(f"register_layer expects a keras Layer class with heras' EncryptableLayer mixin. "
                            f"Received {cls!r}.")
        cls = keras.saving.register_keras_serializable(package=package)(cls)
        _REGISTERED[cls.__name__] = cls
        _REGISTERED[f"{package}>{cls.__name__}"] = cls
        return cls
    return decorate


def get_layer_class(name):
    """The heras or registered layer class called ``name``, or None."""
    from . import __all__ as heras_names
    from .. import layers
    cls = getattr(layers, name, None) if name in heras_names else _REGISTERED.get(name)
    return cls if isinstance(cls, type) and issubclass(cls, keras.layers.Layer) else None


def registered_names():
    """Names of the layers registered by applications (without the package prefix)."""
    return sorted(name for name in _REGISTERED if ">" not in name)
