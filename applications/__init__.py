"""Applications built on sealion through heras' public extension points.

Importing this package registers the applications' layers, so that ``sealion run`` configs
and saved models can name them: ``sparsifier`` (L0 activity sparsifier, ``L0Gate``).
"""

from . import sparsifier  # noqa: F401  (registers L0Gate)
