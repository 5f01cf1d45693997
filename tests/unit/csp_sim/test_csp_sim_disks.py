"""Disk files: OFD locks conflict per open file (even in one process), sparse copies."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esc_orch.csp_sim.disks import (
    DiskLock,
    DiskLocked,
    create_sparse,
    locked_elsewhere,
    sparse_copy,
)


def test_ofd_locks_are_per_open_file_not_per_process(tmp_path: Path) -> None:
    disk = tmp_path / "vm.qcow2"
    assert create_sparse(disk, size=8 << 20, seed=b"img")
    first, second = DiskLock(disk), DiskLock(disk)
    first.acquire()
    assert locked_elsewhere(disk)
    with pytest.raises(DiskLocked):
        second.acquire()  # a POSIX (per-process) lock would have let this through
    first.release()
    assert not locked_elsewhere(disk)
    second.acquire()
    second.release()


def test_create_sparse_keeps_an_existing_disk(tmp_path: Path) -> None:
    disk = tmp_path / "vm.qcow2"
    assert create_sparse(disk, size=1 << 30, seed=b"a")
    with open(disk, "rb") as fh:
        before = fh.read(16)
    assert not create_sparse(disk, size=2 << 30, seed=b"b")
    with open(disk, "rb") as fh:
        assert fh.read(16) == before
    assert disk.stat().st_size == 1 << 30
    assert disk.stat().st_blocks * 512 < 4 << 20  # sparse: a few blocks for a 1 GiB disk


def test_sparse_copy_preserves_holes_data_and_reports_progress(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    create_sparse(src, size=64 << 20, seed=b"disk")
    with open(src, "r+b") as fh:
        fh.seek(40 << 20)
        fh.write(os.urandom(3 << 20))
    seen: list[tuple[int, int]] = []
    copied = sparse_copy(src, dst, progress=lambda d, t: seen.append((d, t)))
    assert dst.read_bytes() == src.read_bytes()
    assert copied >= 3 << 20 and copied < 8 << 20
    assert dst.stat().st_blocks * 512 < 10 << 20
    assert seen[-1] == (64 << 20, 64 << 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert not list(tmp_path.glob(".*copying"))
