"""One emulated CSP host: its services, their disks and locks, and the state file.

This is the behaviour behind the REST API, free of HTTP so it can be driven directly in unit
tests. Every change is persisted at once (temp file + fsync + rename), so a SIGKILL'd host
comes back with exactly the services it had; running ones try to start again and stay off,
with a reason, when another host now runs their disk.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from esc_orch.csp_sim.disks import DiskLock, DiskLocked, create_sparse, sparse_copy
from esc_orch.csp_sim.service import DiskStorage, Power, ServiceConfig

GIB = 1 << 30


class HostError(Exception):
    """A refusal the REST layer turns into an HTTP status and a ConfD error body."""

    def __init__(self, status: int, tag: str, message: str, *, app_tag: str | None = None) -> None:
        super().__init__(message)
        self.status, self.tag, self.message = status, tag, message
        self.app_tag = app_tag  # ConfD's error-app-tag: which kind of in-use/resource-denied


class GuestAddresses(Protocol):
    """Where a running VM's addresses go (the guest network), or nowhere."""

    def add(self, addresses: list[str]) -> None: ...
    def remove(self, addresses: list[str]) -> None: ...


@dataclass
class Entry:
    config: ServiceConfig
    uuid: str
    ports: dict[int, tuple[str, str]]  # nic -> (port id, mac)
    reason: str | None = None
    lock: DiskLock | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.lock is not None and self.lock.held


@dataclass
class CopyJob:
    id: str
    service: str
    source: DiskStorage
    target: DiskStorage
    total: int = 0
    done: int = 0
    state: str = "running"  # running | done | failed
    error: str | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "from_storage": self.source.value,
            "to_storage": self.target.value,
            "bytes_total": self.total,
            "bytes_copied": self.done,
            "state": self.state,
        }
        if self.error:
            out["error"] = self.error
        return out


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class CspHost:
    def __init__(
        self,
        *,
        name: str,
        state_dir: Path,
        local_dir: Path,
        gluster_dir: Path | None,
        cluster_name: str | None = None,
        ram_total_mb: int = 65536,
        cpus_total: int = 32,
        guest: GuestAddresses | None = None,
        copy_rate: float | None = None,
        capacity_gb: dict[DiskStorage, float | None] | None = None,
    ) -> None:
        self.name = name
        self.state_file = state_dir / "state.json"
        self.dirs = {DiskStorage.LOCAL: local_dir}
        if gluster_dir is not None:
            self.dirs[DiskStorage.GLUSTER] = gluster_dir
        self.cluster_name = cluster_name
        self.ram_total_mb, self.cpus_total = ram_total_mb, cpus_total
        self.guest = guest
        self.copy_rate = copy_rate  # bytes of data per second for disk copies (None: no limit)
        #: Size of each storage (GB); None: the file system's own free space is the limit.
        self.capacity = {k: v for k, v in (capacity_gb or {}).items() if v is not None}
        self.services: dict[str, Entry] = {}
        self.jobs: dict[str, CopyJob] = {}
        for d in (state_dir, *self.dirs.values()):
            d.mkdir(parents=True, exist_ok=True)

    # persistence -------------------------------------------------------------------------
    def save(self) -> None:
        doc = {
            "host": self.name,
            "services": [
                {
                    "service": e.config.render(),
                    "uuid": e.uuid,
                    "ports": {str(k): list(v) for k, v in e.ports.items()},
                    "reason": e.reason,
                }
                for e in self.services.values()
            ],
        }
        atomic_write(self.state_file, json.dumps(doc, indent=1).encode())

    def load(self) -> None:
        """Read the state file; services that were on try to start (the host is back)."""
        if not self.state_file.exists():
            return
        doc = json.loads(self.state_file.read_text())
        for item in doc.get("services", []):
            cfg = ServiceConfig.parse({"service": item["service"]})
            ports = {int(k): (v[0], v[1]) for k, v in item.get("ports", {}).items()}
            self.services[cfg.name] = Entry(cfg, item["uuid"], ports, item.get("reason"))
        for entry in self.services.values():
            if entry.config.power is Power.ON:
                try:
                    self._start(entry)
                except HostError as exc:
                    entry.config = replace(entry.config, power=Power.OFF)
                    entry.reason = f"restart after host recovery failed: {exc.message}"
        self.save()

    # helpers -----------------------------------------------------------------------------
    def disk_path(self, name: str, storage: DiskStorage) -> Path:
        directory = self.dirs.get(storage)
        if directory is None:
            raise HostError(400, "invalid-value", f"storage {storage.value!r} not on this host")
        return directory / f"{name}.qcow2"

    def storage_free(self, storage: DiskStorage) -> int:
        """Bytes free on ``storage``: its capacity less every file's size (a disk counts whole,
        sparse or not, as a provisioned volume does), or the file system's free space."""
        directory = self.dirs[storage]
        capacity = self.capacity.get(storage)
        if capacity is None:
            st = os.statvfs(directory)
            return st.f_bavail * st.f_frsize
        used = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
        return max(0, int(capacity * GIB) - used)

    def _need_space(self, name: str, storage: DiskStorage, size: int) -> None:
        """Refuse as CSP does (409 resource-denied) a disk the storage has no room for."""
        if storage not in self.capacity:
            return
        free = self.storage_free(storage)
        if size > free:
            raise _no_space(name, storage, f"needs {size / GIB:g} GB, {free / GIB:.1f} GB free")

    def get(self, name: str) -> Entry:
        try:
            return self.services[name]
        except KeyError:
            raise HostError(404, "data-missing", f"service {name!r} not found") from None

    def _addresses(self, entry: Entry) -> list[str]:
        return [v.ip_address for v in entry.config.vnics if v.ip_address]

    def _used(self) -> tuple[int, int]:
        running = [e.config for e in self.services.values() if e.running]
        return sum(c.memory for c in running), sum(c.numcpu for c in running)

    def _start(self, entry: Entry) -> None:
        if entry.running:
            return
        ram, cpus = self._used()
        if ram + entry.config.memory > self.ram_total_mb:
            raise HostError(
                409,
                "resource-denied",
                f"not enough memory for {entry.config.name}: needs {entry.config.memory} MB, "
                f"{self.ram_total_mb - ram} MB free",
                app_tag="memory",
            )
        if cpus + entry.config.numcpu > self.cpus_total:
            raise HostError(
                409,
                "resource-denied",
                f"not enough vCPUs for {entry.config.name}: needs {entry.config.numcpu}, "
                f"{self.cpus_total - cpus} free",
                app_tag="vcpus",
            )
        path = self.disk_path(entry.config.name, entry.config.disk_storage_name)
        if not path.exists():
            raise HostError(409, "in-use", f"disk {path.name} is missing")
        lock = DiskLock(path)
        try:
            lock.acquire()
        except DiskLocked:
            raise HostError(
                409,
                "in-use",
                f"cannot power on {entry.config.name}: disk {path.name} is locked by another "
                "process (running on another host?)",
                app_tag="disk-locked",
            ) from None
        entry.lock, entry.reason = lock, None
        if self.guest is not None:
            self.guest.add(self._addresses(entry))

    def _stop(self, entry: Entry) -> None:
        if entry.lock is not None:
            entry.lock.release()
            entry.lock = None
            if self.guest is not None:
                self.guest.remove(self._addresses(entry))

    def render(self, entry: Entry) -> dict[str, Any]:
        """The service as GET shows it: the configuration plus operational leaves (ours)."""
        out = entry.config.render()
        for vnic in out["vnics"]["vnic"]:
            port_id, mac = entry.ports[vnic["nic"]]
            vnic["port_id"] = port_id
            vnic.setdefault("mac_address", mac)
        out["uuid"] = entry.uuid
        out["host_name"] = self.name
        if entry.running:
            out["oper_status"] = "running"
        else:
            out["oper_status"] = "error" if entry.config.power is Power.ON else "stopped"
        if entry.reason:
            out["power_status_reason"] = entry.reason
        job = self.running_copy(entry.config.name)
        if job is not None:
            out["disk_copy"] = job.render()
        return out

    def running_copy(self, name: str) -> CopyJob | None:
        """The disk copy of ``name`` still in progress, if any."""
        return next(
            (j for j in self.jobs.values() if j.service == name and j.state == "running"), None
        )

    # operations --------------------------------------------------------------------------
    def create(self, cfg: ServiceConfig) -> Entry:
        if cfg.name in self.services:
            raise HostError(409, "data-exists", f"service {cfg.name!r} already exists")
        self._check_port_ids(cfg)
        path = self.disk_path(cfg.name, cfg.disk_storage_name)
        size = max(1, cfg.disk_size) * GIB
        if not path.exists():  # a shared disk that exists already is reused: no new space
            self._need_space(cfg.name, cfg.disk_storage_name, size)
        try:
            create_sparse(path, size=size, seed=cfg.iso_name.encode())
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            path.unlink(missing_ok=True)
            raise _no_space(cfg.name, cfg.disk_storage_name, "no space left on device") from None
        ports = {
            v.nic: (v.port_id or str(uuid.uuid4()), v.mac_address or _mac(cfg.name, v.nic))
            for v in cfg.vnics
        }
        entry = Entry(cfg, str(uuid.uuid4()), ports)
        self.services[cfg.name] = entry
        try:
            if cfg.power is Power.ON:
                self._start(entry)
        except HostError as exc:
            entry.config = replace(cfg, power=Power.OFF)
            entry.reason = exc.message
            raise
        finally:
            self.save()
        return entry

    def _check_port_ids(self, cfg: ServiceConfig) -> None:
        """A chosen port id must be unique on the host (a port belongs to one interface)."""
        wanted = [v.port_id for v in cfg.vnics if v.port_id is not None]
        if len(wanted) != len(set(wanted)):
            raise HostError(409, "data-exists", f"service {cfg.name!r}: duplicate port_id")
        for other in self.services.values():
            taken = {port for port, _ in other.ports.values()}
            clash = sorted(taken.intersection(wanted))
            if clash:
                raise HostError(
                    409,
                    "data-exists",
                    f"port_id {clash[0]} is already used by service {other.config.name!r}",
                )

    def delete(self, name: str, *, keep_disk: bool = False) -> None:
        """Remove the service and (unless ``keep_disk``) its disk.

        A disk that another host has locked (a VM that moved away on shared storage) is never
        unlinked, whatever the request says.
        """
        entry = self.get(name)
        self._stop(entry)
        del self.services[name]
        self.save()
        if keep_disk:
            return
        path = self.disk_path(name, entry.config.disk_storage_name)
        probe = DiskLock(path)
        try:
            probe.acquire()
        except (DiskLocked, FileNotFoundError):
            return
        try:
            path.unlink(missing_ok=True)
        finally:
            probe.release()

    def set_power(self, name: str, power: Power) -> Entry:
        entry = self.get(name)
        try:
            if power is Power.ON:
                self._start(entry)
            else:
                self._stop(entry)
                entry.reason = None
            entry.config = replace(entry.config, power=power)
        except HostError as exc:
            entry.reason = exc.message
            raise
        finally:
            self.save()
        return entry

    def reboot(self, name: str) -> Entry:
        entry = self.get(name)
        if not entry.running:
            raise HostError(409, "in-use", f"service {name!r} is not running")
        return entry

    def resources(self) -> dict[str, Any]:
        ram, cpus = self._used()
        return {
            "name": "csp-2100",
            "host_name": self.name,
            "ip_address": "127.0.0.1",
            "ram_total_mb": self.ram_total_mb,
            "ram_used_mb": ram,
            "num_cpus_total": self.cpus_total,
            "num_cpus_used": cpus,
            "num_service": len(self.services),
        }

    def cluster(self) -> dict[str, Any]:
        storages = [
            {
                "name": storage.value,
                "shared": storage is DiskStorage.GLUSTER,
                "free_mb": self.storage_free(storage) // (1 << 20),
            }
            for storage in self.dirs
        ]
        return {
            "name": self.cluster_name or "",
            "host_name": self.name,
            "storages": {"storage": storages},
        }

    # disk copy ---------------------------------------------------------------------------
    def start_copy(self, name: str, target: DiskStorage) -> tuple[CopyJob, asyncio.Task[None]]:
        entry = self.get(name)
        source = entry.config.disk_storage_name
        if entry.running:
            raise HostError(409, "in-use", f"service {name!r} is running: power it off first")
        if target is source:
            raise HostError(400, "invalid-value", f"disk of {name!r} already on {target.value}")
        if self.running_copy(name) is not None:
            raise HostError(409, "in-use", f"the disk of {name!r} is already being copied")
        src, dst = self.disk_path(name, source), self.disk_path(name, target)
        if not dst.exists():
            self._need_space(name, target, src.stat().st_size)
        job = CopyJob(id=str(uuid.uuid4()), service=name, source=source, target=target)
        self.jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._copy(entry, job, src, dst))
        return job, task

    async def _copy(self, entry: Entry, job: CopyJob, src: Path, dst: Path) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            await asyncio.to_thread(_locked_copy, src, dst, progress, self.copy_rate)
        except (DiskLocked, OSError) as exc:
            job.state, job.error = "failed", str(exc)
            return
        if self.services.get(entry.config.name) is entry:
            entry.config = replace(entry.config, disk_storage_name=job.target)
            self.save()
        job.state = "done"


def _locked_copy(
    src: Path, dst: Path, progress: Callable[[int, int], None], rate: float | None = None
) -> None:
    """Copy holding both disks' locks (nobody may start the VM meanwhile), then drop ``src``.

    ``rate`` (bytes of data per second) slows the copy down so its progress can be watched.
    """
    locks = [DiskLock(src)]
    try:
        locks[0].acquire()
        if dst.exists():
            locks.append(DiskLock(dst))
            locks[1].acquire()
        sparse_copy(src, dst, progress=progress, rate=rate)
        src.unlink(missing_ok=True)
    finally:
        for lock in locks:
            lock.release()


def _no_space(name: str, storage: DiskStorage, detail: str) -> HostError:
    return HostError(
        409,
        "resource-denied",
        f"not enough disk space on storage {storage.value} for {name}: {detail}",
        app_tag="disk-space",
    )


def _mac(name: str, nic: int) -> str:
    digest = uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}/{nic}").bytes
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])
