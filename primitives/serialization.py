"""The sealion container format: a checked header plus binary blobs, for contexts and tensors.

Layout: ``MAGIC`` (8 bytes) | header length (uint32, little endian) | header (UTF-8 JSON) |
blobs, back to back. The header records the artifact kind, the format version, the library
versions that wrote it, each blob's length and a SHA-256 digest of all blobs, so truncated,
corrupted or foreign bytes are refused with a clear error instead of being half-loaded.
"""

import hashlib
import json
import os
import struct
import tempfile

from .errors import SerializationError
from .headers import check_container

MAGIC = b"SEALION\x00"
FORMAT_VERSION = 1


def library_versions():
    """Return the versions of the libraries whose formats an artifact depends on."""
    import numpy
    import tenseal
    from . import __version__
    return {"sealion": __version__, "tenseal": tenseal.__version__, "numpy": numpy.__version__}


def pack(kind, header, blobs):
    """Return bytes holding ``header`` (JSON-able dict) and ``blobs`` (list of bytes)."""
    blobs = [bytes(b) for b in blobs]
    digest = hashlib.sha256()
    for blob in blobs:
        digest.update(blob)
    full = {"kind": kind, "format_version": FORMAT_VERSION, "versions": library_versions(),
            "blob_sizes": [len(b) for b in blobs], "sha256": digest.hexdigest(), **header}
    encoded = json.dumps(full, sort_keys=True).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(encoded)), encoded, *blobs])


def unpack(data, kind):
    """Check ``data`` and return ``(header, blobs)``; raise SerializationError if it is not ours.

    Args:
        data: bytes produced by :func:`pack`.
        kind: the artifact kind expected ("context", "tensor", ...).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerializationError(f"Expected bytes to deserialise. Received: {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise SerializationError(
            f"These bytes are not a sealion artifact (expected a {kind}): the magic header is "
            "missing. Was the file written by sealion's save()/serialize()?")
    if len(data) < len(MAGIC) + 4:
        raise SerializationError(f"The {kind} data is truncated: it ends inside its header.")
    (size,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if start + size > len(data):
        raise SerializationError(f"The {kind} data is truncated: its header needs {size} bytes, "
                                 f"{len(data) - start} follow.")
    try:
        header = json.loads(data[start:start + size].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise SerializationError(f"The {kind} header is corrupted or truncated: {err}") from err
    if not isinstance(header, dict):
        raise SerializationError(f"The {kind} header is not a JSON object; these bytes were not "
                                 "written by sealion's serialize().")
    if header.get("kind") != kind:
        raise SerializationError(
            f"Expected a sealion {kind}, but these bytes hold a {header.get('kind')!r}.")
    if header.get("format_version") != FORMAT_VERSION:
        raise SerializationError(
            f"This {kind} uses sealion format version {header.get('format_version')!r} "
            f"(written by {header.get('versions')}); this sealion reads version {FORMAT_VERSION}. "
            "Re-create it with the installed sealion, or install the version that wrote it.")
    check_container(header, kind)
    offset, blobs = start + size, []
    for blob_size in header["blob_sizes"]:
        blob = data[offset:offset + blob_size]
        if len(blob) != blob_size:
            raise SerializationError(
                f"The {kind} data is truncated: expected {sum(header['blob_sizes'])} body bytes, "
                f"found {len(data) - start - size}.")
        blobs.append(blob)
        offset += blob_size
    if offset != len(data):
        raise SerializationError(f"The {kind} data has {len(data) - offset} unexpected trailing bytes.")
    digest = hashlib.sha256()
    for blob in blobs:
        digest.update(blob)
    if digest.hexdigest() != header["sha256"]:
        raise SerializationError(f"The {kind} data is corrupted: its SHA-256 checksum does not match.")
    return header, blobs


def write_file(path, data):
    """Write ``data`` to ``path`` atomically: a crash never leaves a half-written artifact."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-sealion-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_file(path, kind):
    """Return the bytes of the sealion ``kind`` artifact at ``path`` (checked by the caller's unpack)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SerializationError(f"No {kind} file at {path!r}. Write one with save(path) first.")
    with open(path, "rb") as stream:
        return stream.read()


class SealObjectIO:
    """Convert SEAL objects (ciphertexts, keys) to and from bytes.

    TenSEAL's ``sealapi`` exposes SEAL's ``save``/``load`` only through file paths, so bytes
    go through one reusable scratch file (in /dev/shm when present, i.e. memory).
    """

    def __init__(self):
        folder = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        handle, self._path = tempfile.mkstemp(dir=folder, prefix="sealion-")
        os.close(handle)

    def to_bytes(self, seal_object):
        """Return SEAL's own serialisation of ``seal_object``."""
        seal_object.save(self._path)
        with open(self._path, "rb") as stream:
            return stream.read()

    def load(self, seal_object, seal_context, data):
        """Load ``data`` (from :meth:`to_bytes`) into ``seal_object`` for ``seal_context``."""
        with open(self._path, "wb") as stream:
            stream.write(data)
        try:
            seal_object.load(seal_context, self._path)
        except (ValueError, RuntimeError) as err:
            raise SerializationError(
                f"SEAL refused a serialised {type(seal_object).__name__}: {err}. The data is "
                "corrupted or belongs to other encryption parameters.") from err
        return seal_object

    def __del__(self):
        try:
            os.unlink(self._path)
        except OSError:
            pass
