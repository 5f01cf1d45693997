"""Fence agent for the emulator's per-host power controller (``esc-csp-sim cluster``).

It speaks the controller's small API (``GET /power``, ``POST /power {"action": "off"}``) the
way an IPMI or Redfish agent speaks to a BMC: its own URL and credentials, checked host name,
power read back before a proof is given. Properties: ``url`` (required), ``timeout`` (seconds
per request, default 10); credentials required (:meth:`CspSimPowerFence.config_problems`, also
run at edit time). The password only goes into the Authorization header.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from esc_orch.fence.errors import FenceError, FenceFailure, FenceFailureKind
from esc_orch.fence.types import (
    FenceAgentConfig,
    FenceMethod,
    FenceProof,
    FenceStatus,
    HostPower,
)

TYPE = "CSP_SIM_POWER"
log = logging.getLogger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CspSimPowerFence:
    """:class:`~esc_orch.fence.protocol.FenceAgent` for one emulated host's power controller."""

    def __init__(self, *, config: FenceAgentConfig, now: Callable[[], datetime] = _utcnow) -> None:
        self._config = config
        self._now = now
        url = config.prop("url") or ""
        self._url = url.rstrip("/")
        try:
            self._timeout = float(config.prop("timeout") or 10.0)
        except ValueError:
            self._timeout = -1.0
        self._session: aiohttp.ClientSession | None = None

    @property
    def config(self) -> FenceAgentConfig:
        return self._config

    def __repr__(self) -> str:
        return f"CspSimPowerFence(id={self._config.id!r}, url={self._url!r})"

    def _fail(self, kind: FenceFailureKind, host: str, detail: str) -> FenceError:
        return FenceError(
            FenceFailure(kind=kind, agent_id=self._config.id, host=host, detail=detail)
        )

    @staticmethod
    def config_problems(config: FenceAgentConfig) -> list[tuple[str, str]]:
        """What makes ``config`` unusable, as (setting, sentence): checked at edit time
        (:func:`esc_orch.fence.settings.settings_problems`) and before every request."""
        problems: list[tuple[str, str]] = []
        if not (config.prop("url") or "").startswith(("http://", "https://")):
            problems.append(("url", "the url of the power controller must be http(s)"))
        if config.credentials is None:
            problems.append(
                ("password", "a username and a password (the power controller's login) are needed")
            )
        try:
            timeout_ok = float(config.prop("timeout") or 10.0) > 0
        except ValueError:
            timeout_ok = False
        if not timeout_ok:
            problems.append(("timeout", "the timeout must be a number of seconds > 0"))
        return problems

    def _client(self, host: str) -> aiohttp.ClientSession:
        creds = self._config.credentials
        problems = self.config_problems(self._config)
        if problems or creds is None:
            detail = problems[0][1] if problems else "no credentials configured"
            raise self._fail(FenceFailureKind.MISCONFIGURED, host, detail)
        if self._session is None or self._session.closed:
            token = base64.b64encode(f"{creds.user}:{creds.password}".encode()).decode()
            self._session = aiohttp.ClientSession(
                headers={"Authorization": f"Basic {token}"},
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
        return self._session

    async def _request(self, method: str, host: str, body: Any = None) -> dict[str, Any]:
        session = self._client(host)
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            async with session.request(
                method, self._url + "/power", data=data, headers=headers, allow_redirects=False
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._fail(
                FenceFailureKind.UNREACHABLE,
                host,
                f"power controller {self._url} did not answer: {type(exc).__name__}",
            ) from None
        if status in (401, 403):
            raise self._fail(
                FenceFailureKind.AUTH, host, f"power controller rejected the credentials ({status})"
            )
        try:
            doc = json.loads(text)
        except ValueError:
            doc = {}
        if not isinstance(doc, dict):
            doc = {}
        if status >= 400:
            raise self._fail(
                FenceFailureKind.REFUSED,
                host,
                f"power controller answered {status}: {doc.get('error', text[:200])}",
            )
        return doc

    def _check_host(self, doc: dict[str, Any], host: str) -> HostPower:
        reported = str(doc.get("host", ""))
        if reported != host:
            raise self._fail(
                FenceFailureKind.WRONG_HOST,
                host,
                f"power controller {self._url} belongs to {reported or 'an unnamed host'!r}, "
                f"not {host!r}: nothing was done",
            )
        try:
            return HostPower(str(doc.get("power")))
        except ValueError:
            return HostPower.UNKNOWN

    async def status(self, *, host: str) -> FenceStatus:
        return FenceStatus(
            host=host, power=self._check_host(await self._request("GET", host), host)
        )

    async def fence(self, *, host: str) -> FenceProof:
        before = self._check_host(await self._request("GET", host), host)
        method = FenceMethod.ALREADY_OFF
        if before is not HostPower.OFF:
            method = FenceMethod.POWER_OFF
            log.info("fence agent %s: powering %s off", self._config.id, host)
            self._check_host(await self._request("POST", host, {"action": "off"}), host)
        after = self._check_host(await self._request("GET", host), host)
        if after is not HostPower.OFF:
            raise self._fail(
                FenceFailureKind.NOT_CONFIRMED,
                host,
                f"power off was requested but the controller reports {after}",
            )
        log.info("fence agent %s: %s is off (%s)", self._config.id, host, method.value)
        return FenceProof(
            host=host,
            agent_id=self._config.id,
            agent_type=self._config.type,
            method=method,
            at=self._now(),
            detail=f"power controller {self._url} reports {host} off",
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
