"""Disk files of emulated VMs: sparse creation, QEMU-style OFD locks, sparse-preserving copies.

A CSP host (QEMU underneath) takes an open-file-description write lock on a running VM's disk.
OFD locks belong to the open file, not to the process, are dropped by the kernel when the holder
dies, and conflict between two opens even inside one process, so the lock test of two hosts on
one Gluster file is the same check the kernel does for two real hypervisors.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

# struct flock on Linux (64-bit off_t): short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid, padded to the C structure's alignment.
_FLOCK = struct.Struct("@hhqqixxxx")
CHUNK = 1 << 20


class DiskLocked(Exception):
    """Another open file description holds a conflicting lock on the disk."""


def _flock(kind: int) -> bytes:
    return _FLOCK.pack(kind, os.SEEK_SET, 0, 0, 0)


class DiskLock:
    """An OFD write lock over a whole disk file, held while the object is open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock(fcntl.F_WRLCK))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise DiskLocked(f"disk {self.path.name} is locked by another process") from None
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the OFD lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def locked_elsewhere(path: Path) -> bool:
    """Whether some other open file description holds a lock on ``path``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        raw = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _flock(fcntl.F_WRLCK))
        return bool(_FLOCK.unpack(raw)[0] != fcntl.F_UNLCK)
    finally:
        os.close(fd)


def create_sparse(path: Path, *, size: int, seed: bytes) -> bool:
    """Create a sparse disk of ``size`` bytes with some data (a "boot sector" and a middle
    block) so copies have both data and holes. Returns False when it already existed."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
    except FileExistsError:
        return False
    try:
        block = (seed * (65536 // max(1, len(seed)) + 1))[:65536]
        os.pwrite(fd, block * 4, 0)
        if size > 2 * CHUNK:
            os.pwrite(fd, block, (size // 2) & ~0xFFF)
        os.ftruncate(fd, max(size, 4 * len(block)))
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def _data_ranges(fd: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of the data extents of a file, using SEEK_DATA/SEEK_HOLE."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data past pos
                break
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        ranges.append((start, end))
        pos = end
    return ranges


def sparse_copy(
    src: Path,
    dst: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    rate: float | None = None,
) -> int:
    """Copy ``src`` to ``dst`` chunk by chunk, leaving holes as holes; atomic (temp + rename).

    ``progress(done, total)`` counts holes as done at once. ``rate`` limits the data copied per
    second (smaller chunks, a pause after each), as a slow storage link would. Returns the bytes
    of data copied.
    """
    chunk_size = CHUNK if rate is None else max(4096, min(CHUNK, int(rate / 10)))
    tmp = dst.with_name(f".{dst.name}.copying")
    copied = 0
    src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src_fd).st_size
        dst_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        try:
            os.ftruncate(dst_fd, size)
            ranges = _data_ranges(src_fd, size)
            data_total = sum(end - start for start, end in ranges)
            done_holes = size - data_total
            if progress:
                progress(done_holes, size)
            for start, end in ranges:
                pos = start
                while pos < end:
                    chunk = os.pread(src_fd, min(chunk_size, end - pos), pos)
                    if not chunk:
                        break
                    os.pwrite(dst_fd, chunk, pos)
                    pos += len(chunk)
                    copied += len(chunk)
                    if rate is not None:
                        time.sleep(len(chunk) / rate)
                    if progress:
                        progress(done_holes + copied, size)
            os.fsync(dst_fd)
        finally:
            os.close(dst_fd)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(src_fd)
    return copied
