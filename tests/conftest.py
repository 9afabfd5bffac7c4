"""Shared fixtures: small contexts (keys are generated once per session) and helpers."""

import numpy as np
import pytest

from primitives import Context, EncryptedTensor, Parameters
from tests.helpers import batching_primes


@pytest.fixture(scope="session")
def bfv_context():
    """BFV, n=4096, two CRT primes (T ~ 2^40), 109-bit coefficient modulus: depth 1."""
    params = Parameters("bfv", 4096, (36, 36, 37), batching_primes(4096, [20, 20]), depth=1)
    return Context(params)


@pytest.fixture(scope="session")
def bfv_big_context():
    """BFV, n=8192, four CRT primes (T ~ 2^120): exact integers far beyond 2^62; the
    selection's coefficient modulus (three 58-bit data primes)."""
    params = Parameters("bfv", 8192, (58, 58, 58, 44), batching_primes(8192, [30, 30, 30, 30]), depth=0)
    return Context(params)


@pytest.fixture(scope="session")
def ckks_context():
    """CKKS, n=8192, scale 2^30, three levels."""
    params = Parameters("ckks", 8192, (50, 30, 30, 30, 50), scale_bits=30, depth=3)
    return Context(params)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=["direct", "serialized"])
def via(request):
    """Run encrypted ops on the client's tensors, or on copies that went through bytes to a
    public (server) context: every op is also a serialise/deserialise round trip."""
    servers = {}

    def transfer(tensor):
        if request.param == "direct":
            return tensor
        key = tensor.context.key_id
        if key not in servers:
            servers[key] = Context.from_bytes(tensor.context.serialize())
        return EncryptedTensor.from_bytes(tensor.serialize(), servers[key])
    return transfer
