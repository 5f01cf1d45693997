"""The ConfD-style REST API of one emulated CSP host (reference §8, plus our additions).

Routes map 1:1 onto :class:`~esc_orch.csp_sim.host.CspHost` operations; everything that is
HTTP (basic auth, content types, ConfD error bodies, injected latency and 503s) lives here.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from esc_orch.csp_sim.faults import LiveSettings
from esc_orch.csp_sim.host import CspHost, HostError
from esc_orch.csp_sim.service import DiskStorage, InputError, Power, ServiceConfig

YANG_JSON = "application/vnd.yang.data+json"
TASKS = web.AppKey("tasks", set[asyncio.Task[None]])
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    user: str
    password: str
    latency_s: float = 0.0
    error_rate: float = 0.0
    seed: int | None = None
    #: Read again when they change (csp_sim/faults.py): latency and error rate, the password.
    fault_file: Path | None = None
    password_file: Path | None = None


def confd_error(
    status: int, tag: str, message: str, path: str, app_tag: str | None = None
) -> web.Response:
    error = {"error-message": message, "error-urlpath": path, "error-tag": tag}
    if app_tag is not None:
        error["error-app-tag"] = app_tag
    body = {"errors": {"error": [error]}}
    return web.Response(status=status, text=json.dumps(body), content_type=YANG_JSON)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type=YANG_JSON)


def _authorized(header: str | None, expected_user: str, settings: LiveSettings) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    ok_user = hmac.compare_digest(user.encode(), expected_user.encode())
    ok_password = hmac.compare_digest(password.encode(), settings.password.encode())
    return ok_user and ok_password


def make_app(host: CspHost, settings: ApiSettings) -> web.Application:
    rng = random.Random(settings.seed)
    live = LiveSettings(
        password=settings.password,
        latency_s=settings.latency_s,
        error_rate=settings.error_rate,
        fault_file=settings.fault_file,
        password_file=settings.password_file,
    )

    @web.middleware
    async def faults_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        live.refresh()
        if live.latency_s:
            await asyncio.sleep(live.latency_s)
        if live.error_rate and rng.random() < live.error_rate:
            resp = confd_error(503, "resource-denied", "service unavailable", request.path)
            resp.headers["Retry-After"] = "1"
            return resp
        if not _authorized(request.headers.get("Authorization"), settings.user, live):
            resp = confd_error(401, "access-denied", "access denied", request.path)
            resp.headers["WWW-Authenticate"] = 'Basic realm="restconf"'
            return resp
        try:
            return await handler(request)
        except HostError as exc:
            return confd_error(exc.status, exc.tag, exc.message, request.path, exc.app_tag)
        except InputError as exc:
            return confd_error(400, exc.tag, str(exc), request.path)
        except web.HTTPMethodNotAllowed as exc:
            resp = confd_error(405, "operation-not-supported", exc.reason, request.path)
            resp.headers["Allow"] = exc.headers.get("Allow", "")
            return resp
        except web.HTTPNotFound:
            return confd_error(404, "data-missing", "no such resource", request.path)

    async def body(request: web.Request) -> Any:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != YANG_JSON:
            raise HostError(415, "malformed-message", f"unsupported content type {ctype!r}")
        try:
            return json.loads(await request.text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HostError(400, "malformed-message", f"malformed JSON: {exc}") from None

    async def list_services(request: web.Request) -> web.Response:
        services = [host.render(e) for e in host.services.values()]
        return _json({"services": {"service": services}})

    async def create_service(request: web.Request) -> web.Response:
        cfg = ServiceConfig.parse(await body(request))
        host.create(cfg)
        resp = web.Response(status=201)
        resp.headers["Location"] = f"/api/running/services/service/{cfg.name}"
        return resp

    async def get_service(request: web.Request) -> web.Response:
        return _json({"service": host.render(host.get(request.match_info["name"]))})

    async def delete_service(request: web.Request) -> web.Response:
        keep = request.query.get("keep_disk", "false").lower() == "true"
        host.delete(request.match_info["name"], keep_disk=keep)
        return web.Response(status=204)

    async def patch_service(request: web.Request) -> web.Response:
        data = await body(request)
        name = request.match_info["name"]
        host.get(name)
        svc = data.get("service") if isinstance(data, dict) else None
        if not isinstance(svc, dict) or set(svc) - {"name", "power"} or "power" not in svc:
            raise InputError('expected {"service": {"power": "on"|"off"}}')
        try:
            power = Power(str(svc["power"]))
        except ValueError:
            raise InputError(f"power: {svc['power']!r} is not on or off") from None
        host.set_power(name, power)
        return web.Response(status=204)

    async def operation(request: web.Request) -> web.Response:
        name, op = request.match_info["name"], request.match_info["op"]
        if op == "reboot":
            host.reboot(name)
            return _json({"output": {}})
        if op == "copy-disk":
            data = await body(request)
            raw = data.get("input") if isinstance(data, dict) else None
            if not isinstance(raw, dict) or "to_storage" not in raw:
                raise InputError('expected {"input": {"to_storage": "local"|"gluster"}}')
            try:
                target = DiskStorage(str(raw["to_storage"]))
            except ValueError:
                raise InputError(f"unknown storage {raw['to_storage']!r}") from None
            job, task = host.start_copy(name, target)
            request.app[TASKS].add(task)
            task.add_done_callback(request.app[TASKS].discard)
            return _json({"output": {"job_id": job.id}})
        raise HostError(404, "data-missing", f"no operation {op!r}")

    async def get_copy(request: web.Request) -> web.Response:
        job = host.jobs.get(request.match_info["id"])
        if job is None:
            raise HostError(404, "data-missing", "no such disk copy")
        return _json({"disk-copy": job.render()})

    async def resource(request: web.Request) -> web.Response:
        if request.match_info["name"] != "csp-2100":
            raise HostError(404, "data-missing", "no such resource")
        return _json({"resource": host.resources()})

    async def cluster(request: web.Request) -> web.Response:
        return _json({"cluster": host.cluster()})

    app = web.Application(middlewares=[faults_and_auth])
    app[TASKS] = set()
    svc = "/api/running/services/service/{name}"
    app.router.add_route("GET", "/api/running/services", list_services)
    app.router.add_route("POST", "/api/running/services", create_service)
    app.router.add_route("GET", svc, get_service)
    app.router.add_route("DELETE", svc, delete_service)
    app.router.add_route("PATCH", svc, patch_service)
    app.router.add_route("POST", svc + "/_operations/{op}", operation)
    app.router.add_route("GET", "/api/operational/disk-copies/disk-copy/{id}", get_copy)
    app.router.add_route("GET", "/api/running/resources/resource/{name}", resource)
    app.router.add_route("GET", "/api/running/cluster", cluster)
    return app
