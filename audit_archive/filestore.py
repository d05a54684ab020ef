"""Write-once content-addressed file store: ``root/ab/cdef…(62 hex).pdf``.

Durability order for ``put``: write a temp file in the target directory, fsync it, rename it
into place, fsync the directory.  After ``put`` returns, the file survives a crash; a crash
before that leaves at most a ``.tmp-*`` file, which ``list_all`` ignores and
``stale_temp_files`` reports.

Stored files are read-only and readable by their owner only (0400; the PDFs carry PHI), as the
store is write-once: the mode is set on the temp file before it is linked into place, so a
stored file is never writable under its final name. Folders are 0700.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Iterator

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class FileStoreError(Exception):
    """Integrity or usage error in the file store (bad hash, conflicting existing file)."""


FILE_MODE = 0o400  # never written again; PHI: the portal's user only
DIR_MODE = 0o700


class FileStore:
    """Content-addressed PDF store rooted at ``root`` (created if missing)."""

    suffix = ".pdf"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    def path_for(self, sha256_hex: str) -> Path:
        """Path where the file with this hex SHA-256 lives (whether or not it exists)."""
        if not _HEX64.match(sha256_hex):
            raise FileStoreError(f"not a lowercase hex SHA-256: {sha256_hex!r}")
        return self.root / sha256_hex[:2] / (sha256_hex[2:] + self.suffix)

    def put(self, data: bytes) -> tuple[str, Path]:
        """Store ``data`` durably; returns (hex sha256, path).  Never overwrites.

        An existing file with the same name is accepted only if its bytes hash correctly;
        otherwise FileStoreError (someone tampered with it, and we refuse to paper over that).
        """
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if path.exists():
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                raise FileStoreError(f"{path} exists with different content; refusing to overwrite")
            if path.stat().st_mode & 0o777 != FILE_MODE:
                try:
                    path.chmod(FILE_MODE)  # stored before files were made read-only
                except OSError:
                    pass  # not ours to change; its content is right, which is what matters
            return digest, path
        d = path.parent
        d.mkdir(mode=DIR_MODE, exist_ok=True)
        tmp = d / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            # read-only before it gets its final name (a hard link shares the inode, so the
            # stored file is never writable, not even between link and chmod)
            os.fchmod(fd, FILE_MODE)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        # link() fails instead of replacing, so a concurrent identical put cannot clobber.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return digest, path

    def get(self, sha256_hex: str) -> bytes:
        """Bytes of the stored file (FileNotFoundError if absent).  Does not re-check the hash."""
        return self.path_for(sha256_hex).read_bytes()

    def exists(self, sha256_hex: str) -> bool:
        return self.path_for(sha256_hex).is_file()

    def list_all(self) -> Iterator[str]:
        """Hex SHA-256 names of every stored file (from names, not contents), unordered."""
        if not self.root.is_dir():
            return
        for sub in os.scandir(self.root):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for f in os.scandir(sub.path):
                name = f.name
                if name.endswith(self.suffix) and not name.startswith("."):
                    digest = sub.name + name[: -len(self.suffix)]
                    if _HEX64.match(digest):
                        yield digest

    def stale_temp_files(self) -> list[Path]:
        """Temp files left by interrupted writes (safe to delete when no append is running)."""
        return sorted(p for p in self.root.glob("??/.tmp-*"))
