"""`LocalExecutor`: the encrypted forward pass on this machine (the default)."""


class LocalExecutor:
    """Run the forward pass here, BFV CRT primes (or ciphertext groups) in forked processes.

    The processes share the model, keys and inputs with this one through the fork; only the
    results travel back (:mod:`primitives.parallel`). ``SEALION_WORKERS`` sets their number.
    """

    name = "local"

    def forward(self, model, x, progress=None):
        """``model``'s output on ``x``; ``progress(index, layer, output)`` after each layer computed here."""
        return model._forward_on_this_machine(x, progress)

    def close(self):
        """Nothing to release (the worker processes end with each forward pass)."""

    def __repr__(self):
        return "<heras LocalExecutor: this machine's process pool>"
