"""The L0 activity sparsifier (SEALion's first application): hard-concrete gates that prune
activations, folded away and removed from the encrypted graph by heras' gate extension point.

``L0Gate`` is a heras layer (``sealion run`` configs name it ``L0Gate``); ``L0Schedule`` is
the penalty's warm-up, added by heras' ``fit``; ``sweep.py`` trains over lambdas and plots
accuracy against activations and encrypted latency.
"""

from .layers import DEFAULT_LAMBDA, L0Gate
from .schedule import L0Schedule

__all__ = ["L0Gate", "L0Schedule", "DEFAULT_LAMBDA"]
