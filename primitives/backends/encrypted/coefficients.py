"""SEAL ciphertexts <-> numpy: the raw coefficients as a uint64 array of shape (size, L, n).

A ciphertext holds ``size`` polynomials (2, or 3 for an un-relinearised product), each with
one row of ``n`` coefficients per coefficient prime q_0 .. q_{L-1} of its level; row i is
reduced mod q_i. BFV ciphertexts are in coefficient form, CKKS ciphertexts in NTT form: both
are linear in these numbers, which is what :mod:`.coefficient_linear` uses.

Two routes, both exact:

* **serialized** (always available): ``Ciphertext.save`` writes SEAL's container (16-byte
  header: uint16 magic 0xA15E, uint8 header size 16, uint8 version major, uint8 minor,
  uint8 compression (0 none, 1 zlib, 2 zstd), uint16 reserved, uint64 total size; then the
  body: parms_id (4 x uint64), is_ntt_form (1 byte), size, n, L (uint64 each), scale
  (double), correction factor (uint64), and the DynArray with its own 16-byte header, a uint64
  count and the coefficients). Reading decompresses that; writing builds the same bytes
  uncompressed and ``Ciphertext.load``\\ s them, which makes SEAL check every coefficient
  against its prime. Scratch files live in /dev/shm (memory) when possible.
* **direct**: numpy views of the coefficient buffer in SEAL's memory, no copy. This relies
  on two layouts, both checked at run time before any use (see below):

  - pybind11 (as built into TenSEAL 0.3.18): a bound object is a Python instance whose
    first field after ``PyObject_HEAD`` (16 bytes on 64-bit CPython) is the pointer to the
    C++ object ("simple layout": one C++ type, holder stored inline).
  - SEAL 4.x ``Ciphertext``: ``parms_id_`` (4 x uint64) at byte 0, ``is_ntt_form_`` (bool)
    at 32, ``size_`` at 40, ``poly_modulus_degree_`` at 48, ``coeff_modulus_size_`` at 56,
    ``scale_`` (double) at 64, ``correction_factor_`` at 72 and ``data_`` (a DynArray) at 80;
    DynArray: MemoryPoolHandle (one shared_ptr, 16 bytes), ``capacity_`` at +16, ``size_`` at
    +24, then ``Pointer<T>`` whose first member is the data pointer, at +32.

  Validation, once per SEAL component (:func:`validate`): a probe ciphertext (a fresh
  encryption of zero) is read directly and through serialisation and must agree bit for bit
  (coefficients and every metadata field); a ciphertext allocated and written directly (size
  3, the probe's NTT flag, a test scale) must serialise back to exactly what was written, with
  SEAL's own accessors agreeing. Before every direct access to any ciphertext: the C++
  pointer found in the Python object plus 80 must equal the pointer held by the object
  ``dyn_array()`` returns (a reference to the member ``data_``), checked before reading any
  C++ memory; then parms_id, size, n, L, scale and the NTT flag read from memory must equal
  SEAL's accessors, the DynArray's size must be size * L * n with capacity at least that, and
  the first coefficient of every polynomial must equal ``data(i)``. After writing, ``data(i)``
  is checked again. Any disagreement raises :class:`LayoutError`; a failed validation makes
  the component use the serialised route instead.

``SEALION_COEFFICIENT_ROUTE`` (environment) or :data:`ROUTE` picks ``auto`` (direct when
validated, else serialized), ``direct`` (error if validation fails) or ``serialized``.
"""

import ctypes
import os
import struct
import tempfile
import zlib

import numpy as np
from tenseal import sealapi

ROUTES = ("auto", "direct", "serialized")
ROUTE = None  # None: $SEALION_COEFFICIENT_ROUTE, default "auto"
ENVIRONMENT_VARIABLE = "SEALION_COEFFICIENT_ROUTE"

SEAL_MAGIC = 0xA15E
_HEADER = struct.Struct("<HBBBBHQ")          # magic, header size, major, minor, compression, reserved, total
_METADATA = struct.Struct("<4QB3QdQ")        # parms_id, is_ntt_form, size, n, L, scale, correction
_COUNT = struct.Struct("<Q")

# pybind11 instance: PyObject_HEAD (refcount, type) then the C++ object pointer
_VALUE_POINTER = 16
# SEAL 4.x Ciphertext members (bytes from the object's start)
_NTT, _SIZE, _N, _L, _SCALE, _DATA = 32, 40, 48, 56, 64, 80
_DYN_CAPACITY, _DYN_SIZE, _DYN_POINTER = _DATA + 16, _DATA + 24, _DATA + 32
_CIPHERTEXT_BYTES = _DATA + 48


class LayoutError(RuntimeError):
    """The in-memory layout of a SEAL object is not the one the direct route assumes."""


def route_setting():
    """The configured route: :data:`ROUTE`, else $SEALION_COEFFICIENT_ROUTE, else "auto"."""
    route = ROUTE if ROUTE is not None else os.environ.get(ENVIRONMENT_VARIABLE, "auto")
    if route not in ROUTES:
        raise ValueError(f"Expected the coefficient route to be one of {list(ROUTES)}. "
                         f"Received: {route!r} (from {'ROUTE' if ROUTE is not None else ENVIRONMENT_VARIABLE}).")
    return route


def io_for(component, route=None):
    """The :class:`CoefficientIO` of ``component`` for ``route`` (cached on the component).

    Returns None when no route works (then callers keep SEAL's own arithmetic).
    """
    route = route or route_setting()
    key = ("coefficient_io", route)
    if key not in component.cache:
        component.cache[key] = _make_io(component, route)
    return component.cache[key]


def _make_io(component, route):
    if route in ("auto", "direct"):
        report = validate(component)
        if report["direct"]:
            return CoefficientIO(component, direct=True, report=report)
        if route == "direct":
            raise LayoutError(f"The direct coefficient route failed its validation: {report['reason']}")
    else:
        report = {"direct": False, "reason": "serialized route requested"}
    try:
        io = CoefficientIO(component, direct=False, report=report)
        _check_serialized(io)
    except Exception as err:  # noqa: BLE001 - any failure means: keep SEAL's arithmetic
        report["serialized"] = f"failed: {err}"
        return None
    return io


# ----------------------------------------------------------------- direct memory access
def _pointer_at(address):
    return ctypes.c_void_p.from_address(address).value or 0


def _object_pointer(seal_object):
    """The C++ object behind a pybind11-bound Python object."""
    if type(seal_object).__basicsize__ < _VALUE_POINTER + 8:
        raise LayoutError(f"{type(seal_object).__name__} instances are too small to be pybind11 instances.")
    return _pointer_at(id(seal_object) + _VALUE_POINTER)


def _locate(ct):
    """Address of the C++ Ciphertext behind ``ct``, checked against ``dyn_array()`` first."""
    address = _object_pointer(ct)
    data = ct.dyn_array()  # a reference to the member data_, as a pybind11 instance
    if not address or _object_pointer(data) != address + _DATA:
        raise LayoutError("Ciphertext.dyn_array() does not sit at the expected offset of the "
                          "C++ object: unknown pybind11 or SEAL layout.")
    return address


def _fields(address):
    """The Ciphertext members at ``address`` (see the module docstring)."""
    raw = ctypes.string_at(address, _CIPHERTEXT_BYTES)
    words = np.frombuffer(raw, dtype=np.uint64)
    return {"parms_id": [int(w) for w in words[:4]], "ntt": raw[_NTT], "size": int(words[_SIZE // 8]),
            "n": int(words[_N // 8]), "L": int(words[_L // 8]),
            "scale": struct.unpack_from("<d", raw, _SCALE)[0],
            "capacity": int(words[_DYN_CAPACITY // 8]), "count": int(words[_DYN_SIZE // 8]),
            "pointer": int(words[_DYN_POINTER // 8])}


def _checked_fields(ct):
    """Locate ``ct`` and check its members against SEAL's accessors; return (address, fields)."""
    address = _locate(ct)
    fields = _fields(address)
    size, n, L = ct.size(), ct.poly_modulus_degree(), ct.coeff_modulus_size()
    expected = {"parms_id": list(ct.parms_id()), "ntt": int(ct.is_ntt_form()), "size": size, "n": n,
                "L": L, "count": size * n * L}
    for name, value in expected.items():
        if fields[name] != value:
            raise LayoutError(f"Ciphertext field {name}: memory holds {fields[name]!r}, SEAL says {value!r}.")
    if fields["scale"] != ct.scale and not (np.isnan(fields["scale"]) and np.isnan(ct.scale)):
        raise LayoutError(f"Ciphertext scale: memory holds {fields['scale']!r}, SEAL says {ct.scale!r}.")
    if fields["capacity"] < fields["count"] or (fields["count"] and not fields["pointer"]):
        raise LayoutError("Ciphertext buffer: capacity below size or a null data pointer.")
    return address, fields


def _view(ct, fields, writeable):
    """numpy (size, L, n) view of the coefficient buffer; keeps ``ct`` alive."""
    size, L, n = fields["size"], fields["L"], fields["n"]
    if fields["count"] == 0:
        return np.zeros((size, L, n), dtype=np.uint64)
    buffer = (ctypes.c_uint64 * fields["count"]).from_address(fields["pointer"])
    buffer.owner = ct  # the view's base keeps the ciphertext (and so the memory) alive
    array = np.frombuffer(buffer, dtype=np.uint64).reshape(size, L, n)
    array.flags.writeable = writeable
    return array


def _check_first_coefficients(ct, array):
    """data(i) is the first coefficient of polynomial i: compare with the array, every i."""
    for i in range(array.shape[0]):
        if int(array[i, 0, 0]) != ct.data(i):
            raise LayoutError(f"Polynomial {i}: the array starts with {int(array[i, 0, 0])}, "
                              f"SEAL's data({i}) is {ct.data(i)}.")


def direct_read(ct):
    """Read-only view of ``ct``'s coefficients (no copy), after the per-access checks."""
    _, fields = _checked_fields(ct)
    array = _view(ct, fields, writeable=False)
    _check_first_coefficients(ct, array)
    return array


def direct_allocate(seal_context, parms_id, size, ntt, scale):
    """A new zero ciphertext of ``size`` polynomials at ``parms_id`` and a writable view of it."""
    ct = sealapi.Ciphertext(seal_context, parms_id, size)
    ct.resize(seal_context, parms_id, size)
    address, fields = _checked_fields(ct)
    if bool(ntt) != bool(fields["ntt"]):
        ctypes.memset(address + _NTT, 1 if ntt else 0, 1)
        if ct.is_ntt_form() != bool(ntt):
            raise LayoutError("Writing the NTT flag did not change Ciphertext.is_ntt_form().")
    ct.scale = scale
    _, fields = _checked_fields(ct)
    return ct, _view(ct, fields, writeable=True)


# ----------------------------------------------------------------- serialised route
class _Scratch:
    """A reusable scratch file (in /dev/shm when present), one per process: a forked worker
    (:mod:`primitives.parallel`) gets its own instead of racing its parent for the file.

    On Linux the file is unlinked at once and reached through /proc/self/fd, so it vanishes
    with the process even when a worker leaves through ``os._exit``.
    """

    def __init__(self):
        self._pid, self._path, self._fd = None, None, None

    @property
    def path(self):
        if self._pid != os.getpid():
            folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
            fd, name = tempfile.mkstemp(dir=folder, prefix="sealion-coefficients-")
            if os.path.isdir("/proc/self/fd"):
                os.unlink(name)
                self._fd, self._path = fd, f"/proc/self/fd/{fd}"
            else:
                os.close(fd)
                self._fd, self._path = None, name
            self._pid = os.getpid()
        return self._path

    def __del__(self):
        if getattr(self, "_pid", None) != os.getpid():
            return
        try:
            if self._fd is not None:
                os.close(self._fd)
            else:
                os.unlink(self._path)
        except OSError:
            pass


def parse_saved(blob):
    """Decode SEAL's saved Ciphertext bytes: (metadata dict, (size, L, n) uint64 array)."""
    if len(blob) < _HEADER.size:
        raise LayoutError("SEAL ciphertext bytes shorter than SEAL's header.")
    magic, header_size, major, minor, mode, _, total = _HEADER.unpack_from(blob)
    if magic != SEAL_MAGIC or header_size != _HEADER.size or total != len(blob):
        raise LayoutError("Not a SEAL serialisation (magic, header size or total size differ).")
    body = blob[_HEADER.size:]
    if mode == 2:
        import zstandard
        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    elif mode == 1:
        body = zlib.decompress(body)
    elif mode != 0:
        raise LayoutError(f"Unknown SEAL compression mode {mode}.")
    *parms_id, ntt, size, n, L, scale, correction = _METADATA.unpack_from(body)
    offset = _METADATA.size
    magic, header_size, _, _, inner_mode, _, inner_total = _HEADER.unpack_from(body, offset)
    (count,) = _COUNT.unpack_from(body, offset + _HEADER.size)
    start = offset + _HEADER.size + _COUNT.size
    if (magic != SEAL_MAGIC or inner_mode != 0 or count != size * n * L
            or inner_total != _HEADER.size + _COUNT.size + 8 * count or len(body) != start + 8 * count):
        raise LayoutError("Unexpected layout of the ciphertext's coefficient array in SEAL's serialisation.")
    array = np.frombuffer(body, dtype=np.uint64, count=count, offset=start).reshape(size, L, n)
    meta = {"parms_id": list(parms_id), "ntt": ntt, "size": size, "n": n, "L": L, "scale": scale,
            "correction": correction, "version": (major, minor)}
    return meta, array


def build_saved(meta, array, version):
    """SEAL's uncompressed Ciphertext bytes for ``meta`` and the (size, L, n) ``array``."""
    count = array.size
    inner = _HEADER.pack(SEAL_MAGIC, _HEADER.size, *version, 0, 0, _HEADER.size + _COUNT.size + 8 * count)
    body = (_METADATA.pack(*meta["parms_id"], int(bool(meta["ntt"])), meta["size"], meta["n"], meta["L"],
                           float(meta["scale"]), meta.get("correction", 1))
            + inner + _COUNT.pack(count))
    total = _HEADER.size + len(body) + 8 * count
    return _HEADER.pack(SEAL_MAGIC, _HEADER.size, *version, 0, 0, total) + body, total


# ----------------------------------------------------------------- the IO object
class CoefficientIO:
    """Read and write the coefficients of one SEAL component's ciphertexts.

    Attributes:
        direct: True for the direct route (views of SEAL's memory), False for serialisation.
        report: how the route was chosen (validation outcome).
    """

    def __init__(self, component, direct, report=None):
        self.component, self.direct, self.report = component, direct, report or {}
        self._scratch = _Scratch()
        self._version = None

    @property
    def route(self):
        return "direct" if self.direct else "serialized"

    def read(self, ct):
        """Coefficients of ``ct`` as (size, L, n) uint64: a read-only view (direct) or a copy."""
        if self.direct:
            return direct_read(ct)
        return self.serialized_read(ct)

    def serialized_read(self, ct):
        ct.save(self._scratch.path)
        with open(self._scratch.path, "rb") as stream:
            meta, array = parse_saved(stream.read())
        self._version = self._version or meta["version"]
        if (meta["size"], meta["L"], meta["n"]) != (ct.size(), ct.coeff_modulus_size(), ct.poly_modulus_degree()):
            raise LayoutError("SEAL's serialisation disagrees with the ciphertext's own sizes.")
        return array

    def allocate(self, parms_id, size, ntt, scale, n, L):
        """A new ciphertext and a writable (size, L, n) buffer for its coefficients.

        Direct route: the buffer is the ciphertext's memory. Serialized route: a numpy array
        that :meth:`commit` loads into the ciphertext.
        """
        if self.direct:
            ct, buffer = direct_allocate(self.component.seal_context, parms_id, size, ntt, scale)
            if buffer.shape != (size, L, n):
                raise LayoutError(f"Allocated ciphertext has shape {buffer.shape}, expected {(size, L, n)}.")
            return ct, buffer
        ct = sealapi.Ciphertext(self.component.seal_context)
        return ct, _PendingBuffer((size, L, n), parms_id, ntt, scale)

    def commit(self, ct, buffer):
        """Make ``ct`` hold ``buffer`` (direct: check the writes landed); return ``ct``."""
        if self.direct:
            _check_first_coefficients(ct, buffer)
            return ct
        return self.serialized_write(ct, buffer.array, buffer.meta)

    def serialized_write(self, ct, array, meta):
        if self._version is None:
            self._version = _probe_version(self.component)
        size, L, n = array.shape
        meta = {**meta, "size": size, "L": L, "n": n}
        head, total = build_saved(meta, array, self._version)
        with open(self._scratch.path, "wb") as stream:
            stream.write(head)
            stream.write(np.ascontiguousarray(array, dtype=np.uint64).data)
        ct.load(self.component.seal_context, self._scratch.path)
        return ct


class _PendingBuffer:
    """Serialized route: a coefficient array waiting for :meth:`CoefficientIO.commit`."""

    def __init__(self, shape, parms_id, ntt, scale):
        self.array = np.zeros(shape, dtype=np.uint64)
        self.meta = {"parms_id": list(parms_id), "ntt": bool(ntt), "scale": float(scale), "correction": 1}

    # the kernel writes through ``buffer.reshape(...)[...] = ...`` on both routes
    def reshape(self, *shape):
        return self.array.reshape(*shape)

    @property
    def shape(self):
        return self.array.shape


def _probe_version(component):
    ct = _probe_ciphertext(component)
    scratch = _Scratch()
    ct.save(scratch.path)
    with open(scratch.path, "rb") as stream:
        return parse_saved(stream.read())[0]["version"]


def _probe_ciphertext(component):
    ct = sealapi.Ciphertext(component.seal_context)
    component.encryptor.encrypt_zero(ct)
    return ct


def _check_serialized(io):
    """The serialised route round-trips a probe ciphertext exactly."""
    probe = _probe_ciphertext(io.component)
    array = io.serialized_read(probe).copy()
    out = sealapi.Ciphertext(io.component.seal_context)
    io.serialized_write(out, array, {"parms_id": list(probe.parms_id()), "ntt": probe.is_ntt_form(),
                                     "scale": probe.scale})
    if not np.array_equal(io.serialized_read(out), array) or out.is_ntt_form() != probe.is_ntt_form():
        raise LayoutError("The serialised route does not round-trip a probe ciphertext.")


def validate(component):
    """Check the direct route on this component against serialisation; return a report dict.

    ``report["direct"]`` is True only if a probe read directly equals its serialisation bit
    for bit (coefficients and metadata), and a ciphertext written directly serialises back to
    exactly what was written.
    """
    try:
        io = CoefficientIO(component, direct=False)
        probe = _probe_ciphertext(component)
        direct = direct_read(probe)
        meta, serial = _serialized_meta(io, probe)
        if not np.array_equal(direct, serial):
            raise LayoutError("direct read differs from the serialised coefficients")
        _, fields = _checked_fields(probe)
        for name in ("parms_id", "ntt", "size", "n", "L", "scale"):
            if fields[name] != meta[name]:
                raise LayoutError(f"direct field {name} differs from the serialised one")
        # write: size 3 (un-relinearised products), the probe's NTT flag, a test scale
        size, L, n = 3, fields["L"], fields["n"]
        ntt, scale = bool(fields["ntt"]), 2.0 ** 20 + 0.5
        moduli = _level_moduli(component, probe.parms_id())
        rng = np.random.default_rng(12345)
        values = (rng.integers(0, 2 ** 62, size=(size, L, n), dtype=np.uint64)
                  % np.array(moduli, dtype=np.uint64)[None, :, None])
        out, buffer = direct_allocate(component.seal_context, probe.parms_id(), size, ntt, scale)
        buffer[...] = values
        _check_first_coefficients(out, buffer)
        meta, written = _serialized_meta(io, out)
        if not np.array_equal(written, values):
            raise LayoutError("a directly written ciphertext serialises to other coefficients")
        if (meta["ntt"], meta["size"], meta["scale"], meta["parms_id"]) != (int(ntt), size, scale,
                                                                            list(probe.parms_id())):
            raise LayoutError("a directly written ciphertext serialises with other metadata")
        if out.is_ntt_form() != ntt or out.scale != scale or out.size() != size:
            raise LayoutError("a directly written ciphertext reports other metadata")
    except Exception as err:  # noqa: BLE001 - any surprise disables the direct route
        return {"direct": False, "reason": f"{type(err).__name__}: {err}"}
    return {"direct": True, "reason": "probe read and write agree with SEAL's serialisation bit for bit"}


def _serialized_meta(io, ct):
    ct.save(io._scratch.path)  # noqa: SLF001
    with open(io._scratch.path, "rb") as stream:  # noqa: SLF001
        return parse_saved(stream.read())


def _level_moduli(component, parms_id):
    data = component.seal_context.get_context_data(parms_id)
    return [m.value() for m in data.parms().coeff_modulus()]


level_moduli = _level_moduli
