"""Cut an encrypted batch into (ciphertext group, CRT component) work units, and glue it back.

A BFV tensor with k plaintext primes and G ciphertext groups (a batch of G * n samples) is
k * G independent computations: every op acts on one ciphertext per feature, per prime, per
group, and nothing mixes them. A unit is the tensor restricted to one group and one prime;
running a network on each unit and stitching the results gives the same ciphertexts as running
it on the whole tensor (the bounds are per feature and the noise estimates per prime, so every
unit computes the same ones). Executors that ship work to other machines
(:mod:`heras.execution`) send units; the local process pool (:mod:`primitives.parallel`) splits
more coarsely because its workers share memory with the parent.
"""

from .parallel import _group_view, _stitch, component_view


def split_units(x):
    """Return ``[((group, component), unit tensor)]`` covering ``x``, component-major.

    Each unit is a view of ``x`` (no ciphertext is copied) on one group and one component; its
    context keeps the full parameters, so overflow guards still check against the whole CRT
    product, and the key id, so its results load back under ``x``'s context.
    """
    components, groups = x.data.shape[0], x.data.shape[1]
    units = []
    for j in range(components):
        prime = component_view(x, [j])
        for g in range(groups):
            units.append(((g, j), _group_view(prime, [g]) if groups > 1 else prime))
    return units


def unit_context(x, component):
    """The context a unit's result of component ``component`` loads under (public or private,
    as ``x``'s context is)."""
    return component_view(x, [component]).context


def stitch_units(results, x):
    """One tensor from ``{(group, component): result}`` of a computation on every unit of ``x``.

    Groups are concatenated in order within each component, then the components; the bound
    is the largest the units report (they report the same), and the noise estimate per prime
    the worst.

    Raises:
        ValueError: if a unit of ``x`` has no result.
    """
    components, groups = x.data.shape[0], x.data.shape[1]
    missing = [(g, j) for j in range(components) for g in range(groups) if (g, j) not in results]
    if missing:
        raise ValueError(f"No result for the work units {missing} (group, component) of the batch; "
                         "every unit must be computed before the batch can be stitched.")
    per_component = []
    for j in range(components):
        parts = [results[(g, j)] for g in range(groups)]
        per_component.append(parts[0] if groups == 1 else _stitch(parts, 1, component_view(x, [j])))
    return _stitch(per_component, 0, x)


def pack(unit):
    """A unit (one component) for another process: ``("coefficients", header, uint64 array)``
    (raw coefficients, copied at memory speed) or, when its ciphertexts differ in level or
    size, ``("bytes", serialize())``."""
    from .backends.encrypted import transfer
    packed = transfer.to_arrays(unit)
    return ("coefficients", *packed) if packed is not None else ("bytes", unit.serialize())


def unpack(packed, context):
    """The unit :func:`pack` made, rebuilt under ``context`` (checked: keys, parameters, shape,
    every coefficient below its prime)."""
    from .backends.encrypted import transfer
    from .encrypted_tensor import EncryptedTensor
    if packed[0] == "coefficients":
        return transfer.from_arrays(packed[1], packed[2], context)
    if packed[0] == "bytes":
        return EncryptedTensor.from_bytes(packed[1], context)
    raise ValueError(f"Unknown packed unit kind {packed[0]!r}; expected 'coefficients' or 'bytes'.")


def packed_size(packed):
    """Bytes a packed unit moves (its array or bytes; the header is a few hundred bytes)."""
    return packed[2].nbytes if packed[0] == "coefficients" else len(packed[1])
