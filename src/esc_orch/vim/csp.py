"""The CSP connector: drives one CSP host through its ConfD REST API (reference §8).

It translates our types with :mod:`esc_orch.vim.csp_mapping`, classes HTTP outcomes into VIM
errors, retries only temporary ones (5xx, connection errors, timeouts) with backoff, and keeps
HTTPS verification on unless the configuration says ``insecure``. The password only ever goes
into the Authorization header: it is never logged nor part of any repr or error message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from esc_orch.vim.csp_mapping import host_info, service_to_state, spec_to_service
from esc_orch.vim.errors import (
    PermanentVimError,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimConflict,
    VimDiskInUse,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import ProgressCallback, require
from esc_orch.vim.retry import RetryPolicy, Sleep, with_retries
from esc_orch.vim.types import (
    Capability,
    ConnectorConfig,
    DiskCopyProgress,
    HostInfo,
    Storage,
    VmChange,
    VmSpec,
    VmState,
)
from esc_orch.vim.watch import poll_changes

log = logging.getLogger(__name__)

YANG_JSON = "application/vnd.yang.data+json"
SERVICES = "/api/running/services"


def _float(config: ConnectorConfig, name: str, default: float) -> float:
    raw = config.prop(name)
    try:
        return default if raw is None else float(raw)
    except ValueError:
        raise PermanentVimError(f"property {name!r} is not a number: {raw!r}") from None


def _confd_error(text: str) -> tuple[str | None, str | None, str]:
    """(error-tag, error-app-tag, error-message) from a ConfD error body, tolerating anything."""
    try:
        err = json.loads(text)["errors"]["error"][0]
        return err.get("error-tag"), err.get("error-app-tag"), str(err.get("error-message", ""))
    except (ValueError, KeyError, IndexError, TypeError):
        return None, None, text[:200]


def _conflict(tag: str | None, app_tag: str | None, message: str, detail: str) -> VimError:
    """A 409 by its cause: capacity, a disk locked elsewhere, an existing name, or state."""
    if tag == "data-exists":
        return _Exists(detail)
    if tag == "resource-denied":
        resource = app_tag
        if resource is None:
            lowered = message.lower()
            resource = "memory" if "memory" in lowered else "vcpus" if "cpu" in lowered else None
        return VimCapacityError(detail, resource=resource)
    if app_tag == "disk-locked" or (tag == "in-use" and "locked" in message.lower()):
        return VimDiskInUse(detail)
    return VimConflict(detail)


def classify(status: int, *, text: str, what: str, retry_after: str | None = None) -> VimError:
    """The VIM error for a non-2xx HTTP answer."""
    tag, app_tag, message = _confd_error(text)
    detail = f"{what}: HTTP {status} {message}".strip()
    if status in (401, 403):
        return VimAuthError(f"{what}: authentication rejected (HTTP {status})")
    if status == 404:
        return VimNotFound(what, detail)
    if status == 409:
        return _conflict(tag, app_tag, message, detail)
    if status >= 500 or status == 429:
        try:
            delay = float(retry_after) if retry_after else 1.0
        except ValueError:
            delay = 1.0
        return TemporaryVimError(detail, retry_after=delay)
    return PermanentVimError(detail)


class _Exists(PermanentVimError):
    """409 data-exists: the service is already there (ensure_vm treats it as success)."""


class CspConnector:
    """:class:`~esc_orch.vim.protocol.Connector` for one CSP 2100 host.

    Properties: ``url`` (required, e.g. ``https://csp-1:443``), ``cluster_name`` (declares shared
    storage and disk copy), ``ca_file``, ``insecure`` ("true" disables certificate checks),
    ``timeout`` (seconds per request, default 30), ``retries`` (total tries, default 4),
    ``backoff`` (first delay, default 0.5 s), ``poll_interval`` (disk copy, default 0.5 s),
    ``port_ids`` ("false" when the CSP does not accept a chosen ``port_id`` per vnic on create;
    otherwise :attr:`Capability.PORT_IDS` is declared).
    """

    def __init__(self, *, config: ConnectorConfig, sleep: Sleep | None = None) -> None:
        url = config.prop("url")
        if not url or not url.startswith(("http://", "https://")):
            raise PermanentVimError(f"connector {config.id!r}: property url must be http(s)://…")
        if config.credentials is None:
            raise PermanentVimError(f"connector {config.id!r} has no credentials")
        self._config = config
        self._base = url.rstrip("/")
        self._sleep: Sleep = sleep or asyncio.sleep
        self._timeout = _float(config, "timeout", 30.0)
        self._policy = RetryPolicy(
            attempts=max(1, int(_float(config, "retries", 4))),
            base_delay=_float(config, "backoff", 0.5),
        )
        self._poll = _float(config, "poll_interval", 0.5)
        caps = {Capability.POWER, Capability.REBOOT}
        if (config.prop("port_ids") or "true").strip().lower() not in {"0", "false", "no", "off"}:
            caps.add(Capability.PORT_IDS)
        if config.prop("cluster_name"):
            caps |= {Capability.DISK_COPY, Capability.SHARED_STORAGE}
        self._capabilities = frozenset(caps)
        self._session: aiohttp.ClientSession | None = None

    @property
    def config(self) -> ConnectorConfig:
        return self._config

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self._capabilities

    def __repr__(self) -> str:
        return f"CspConnector(id={self._config.id!r}, url={self._base!r})"

    # transport ---------------------------------------------------------------------------
    def _ssl(self) -> ssl.SSLContext | bool:
        if self._config.flag("insecure"):
            return False
        return ssl.create_default_context(cafile=self._config.prop("ca_file"))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            creds = self._config.credentials
            assert creds is not None
            token = base64.b64encode(f"{creds.user}:{creds.password}".encode()).decode()
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Basic {token}"},
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(ssl=self._ssl()),
            )
        return self._session

    async def _once(
        self, method: str, path: str, body: Any, params: dict[str, str] | None
    ) -> tuple[int, Any]:
        what = f"{method} {path}"
        data = None if body is None else json.dumps(body)
        headers = {"Accept": YANG_JSON}
        if data is not None:
            headers["Content-Type"] = YANG_JSON
        try:
            async with self._client().request(
                method,
                self._base + path,
                data=data,
                headers=headers,
                params=params,
                allow_redirects=False,  # never carry the credentials elsewhere
            ) as resp:
                text = await resp.text()
                log.debug("%s %s -> %s", self._config.id, what, resp.status)
                if resp.status >= 400:
                    raise classify(
                        resp.status,
                        text=text,
                        what=what,
                        retry_after=resp.headers.get("Retry-After"),
                    )
                return resp.status, (json.loads(text) if text.strip() else None)
        except aiohttp.ClientConnectorCertificateError as exc:
            raise PermanentVimError(
                f"{what}: TLS certificate verification failed: {exc.certificate_error}"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise PermanentVimError(f"{what}: TLS error: {exc}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("%s %s failed: %s", self._config.id, what, type(exc).__name__)
            raise TemporaryVimError(f"{what}: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:
            raise PermanentVimError(f"{what}: CSP sent invalid JSON: {exc}") from None

    async def _call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        async def once() -> Any:
            return (await self._once(method, path, body, params))[1]

        return await with_retries(once, policy=self._policy, sleep=self._sleep)

    def _svc(self, name: str) -> str:
        if not name or "/" in name:
            raise VimNotFound(name, f"invalid VM name {name!r}")
        return f"{SERVICES}/service/{name}"

    # contract ----------------------------------------------------------------------------
    async def describe(self) -> HostInfo:
        doc = await self._call("GET", "/api/running/resources/resource/csp-2100")
        try:
            cluster = (await self._call("GET", "/api/running/cluster")).get("cluster")
        except VimNotFound:
            cluster = None
        return host_info(doc.get("resource", {}), cluster, fallback_name=self._config.id)

    async def list_vms(self) -> tuple[VmState, ...]:
        doc = await self._call("GET", SERVICES)
        items = ((doc or {}).get("services") or {}).get("service", [])
        if isinstance(items, dict):
            items = [items]
        states = [service_to_state(s, host=self._config.id) for s in items]
        return tuple(sorted(states, key=lambda s: s.name))

    async def get_vm(self, *, name: str) -> VmState:
        try:
            doc = await self._call("GET", self._svc(name))
        except VimNotFound:
            raise VimNotFound(name) from None
        return service_to_state(doc["service"], host=self._config.id)

    async def ensure_vm(self, *, spec: VmSpec) -> VmState:
        if spec.storage is Storage.GLUSTER:
            require(self._capabilities, Capability.SHARED_STORAGE, connector=self._config.id)
        if spec.chooses_port_ids:
            require(self._capabilities, Capability.PORT_IDS, connector=self._config.id)
        try:
            return await self.get_vm(name=spec.name)
        except VimNotFound:
            pass
        try:
            await self._call("POST", SERVICES, spec_to_service(spec))
        except _Exists as exc:
            # Created by an earlier try whose answer was lost, or something else of ours
            # exists (a chosen port id taken by another service): then nothing was made.
            try:
                return await self.get_vm(name=spec.name)
            except VimNotFound:
                raise VimConflict(str(exc)) from None
        except VimError as exc:
            await self._cleanup(spec)
            if isinstance(exc, VimNotFound):
                raise PermanentVimError(str(exc)) from None
            raise
        return await self.get_vm(name=spec.name)

    async def _cleanup(self, spec: VmSpec) -> None:
        """Remove a service a failed create left; a shared disk is kept (it may be in use)."""
        try:
            await self.delete_vm(name=spec.name, keep_disk=spec.storage is Storage.GLUSTER)
        except VimError as exc:
            log.warning(
                "%s: could not clean up %s after failed create: %s", self._config.id, spec.name, exc
            )

    async def delete_vm(self, *, name: str, keep_disk: bool = False) -> None:
        params = {"keep_disk": "true"} if keep_disk else None
        try:
            await self._call("DELETE", self._svc(name), params=params)
        except VimNotFound:
            return

    async def _power(self, name: str, power: str) -> VmState:
        try:
            await self._call("PATCH", self._svc(name), {"service": {"power": power}})
        except VimNotFound:
            raise VimNotFound(name) from None
        return await self.get_vm(name=name)

    async def power_on(self, *, name: str) -> VmState:
        require(self._capabilities, Capability.POWER, connector=self._config.id)
        return await self._power(name, "on")

    async def power_off(self, *, name: str) -> VmState:
        require(self._capabilities, Capability.POWER, connector=self._config.id)
        return await self._power(name, "off")

    async def reboot(self, *, name: str) -> VmState:
        require(self._capabilities, Capability.REBOOT, connector=self._config.id)
        try:
            await self._call("POST", self._svc(name) + "/_operations/reboot", {"input": {}})
        except VimNotFound:
            raise VimNotFound(name) from None
        return await self.get_vm(name=name)

    async def copy_disk(
        self,
        *,
        name: str,
        from_storage: Storage,
        to_storage: Storage,
        progress: ProgressCallback | None = None,
    ) -> VmState:
        require(self._capabilities, Capability.DISK_COPY, connector=self._config.id)
        if Storage.GLUSTER in (from_storage, to_storage):
            require(self._capabilities, Capability.SHARED_STORAGE, connector=self._config.id)
        vm = await self.get_vm(name=name)
        if vm.storage is to_storage:
            return vm
        if vm.storage is not from_storage:
            raise PermanentVimError(f"disk of {name!r} is on {vm.storage}, not {from_storage}")
        out = await self._call(
            "POST",
            self._svc(name) + "/_operations/copy-disk",
            {"input": {"to_storage": to_storage.value}},
        )
        job_path = f"/api/operational/disk-copies/disk-copy/{out['output']['job_id']}"
        log.info(
            "%s: copying the disk of %s from %s to %s",
            self._config.id,
            name,
            from_storage.value,
            to_storage.value,
        )
        logged = -1
        while True:
            job = (await self._call("GET", job_path))["disk-copy"]
            if job.get("bytes_total"):
                step = DiskCopyProgress(
                    name=name,
                    bytes_done=int(job["bytes_copied"]),
                    bytes_total=int(job["bytes_total"]),
                    to_storage=to_storage,
                )
                if progress is not None:
                    progress(step)
                tenth = int(step.fraction * 10)
                if tenth > logged:  # at INFO every tenth of the way, not every poll
                    logged = tenth
                    log.info(
                        "%s: disk of %s: %d of %d bytes copied (%d %%)",
                        self._config.id,
                        name,
                        step.bytes_done,
                        step.bytes_total,
                        int(step.fraction * 100),
                    )
            if job["state"] == "done":
                log.info("%s: disk of %s now on %s", self._config.id, name, to_storage.value)
                return await self.get_vm(name=name)
            if job["state"] == "failed":
                raise PermanentVimError(f"disk copy of {name!r} failed: {job.get('error')}")
            await self._sleep(self._poll)

    def watch(self, *, interval: float) -> AsyncIterator[VmChange]:
        return poll_changes(list_vms=self.list_vms, interval=interval, sleep=self._sleep)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
