"""Clients' public contexts on disk, named by the SHA-256 of their bytes.

A BFV or CKKS public context with relinearisation keys is megabytes to tens of megabytes, so a
client uploads it once and then names it by id. The id is the SHA-256 digest of the bytes:
uploading the same context again is harmless and answers the same id, and the client can
compute the id itself. Files are written atomically (a temporary file renamed into place),
so a restart finds every context that was acknowledged and no half-written one.
"""

import hashlib
import os
import re
import tempfile
from pathlib import Path

from .errors import UnknownContext

_ID = re.compile(r"[0-9a-f]{64}")
SUFFIX = ".ctx"


def context_id(data):
    """The id of a context's bytes: their SHA-256 digest in hex."""
    return hashlib.sha256(data).hexdigest()


class ContextStore:
    """A folder of ``<id>.ctx`` files (public contexts only: the service checks each first)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(".upload-*"):  # uploads cut short by a stop
            stale.unlink(missing_ok=True)

    def path(self, identifier):
        """The file of a registered context; UnknownContext (404) if there is none."""
        if not isinstance(identifier, str) or not _ID.fullmatch(identifier):
            raise UnknownContext(identifier)
        path = self.folder / f"{identifier}{SUFFIX}"
        if not path.is_file():
            raise UnknownContext(identifier)
        return path

    def exists(self, identifier):
        try:
            self.path(identifier)
        except UnknownContext:
            return False
        return True

    def upload_file(self):
        """A new temporary file in the store's folder (same file system: the rename is atomic)."""
        handle, name = tempfile.mkstemp(dir=self.folder, prefix=".upload-")
        return os.fdopen(handle, "wb"), Path(name)

    def commit(self, temporary, identifier):
        """Move a checked upload into place as ``<identifier>.ctx``."""
        os.replace(temporary, self.folder / f"{identifier}{SUFFIX}")

    def remove(self, identifier):
        self.path(identifier).unlink()

    def count(self):
        return sum(1 for _ in self.folder.glob(f"*{SUFFIX}"))

    def __repr__(self):
        return f"<ContextStore {self.folder} ({self.count()} contexts)>"
