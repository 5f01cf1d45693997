"""The ESC RPCs (``serviceAction``, ``vmAction``, ``recoveryVmAction``): input checks and a seam.

The wire contract (reference §4) is fixed now so clients get precise errors for malformed
input today; executing an action belongs to the lifecycle engine, which does not exist yet.
Two hooks make rewiring a one-line change in the daemon's wiring:

* ``validator`` — called with the operation element before our own checks; the model layer
  will pass its libyang RPC validation here (it raises ``RpcError``/``RpcErrors``).
* ``sink`` — an :class:`EscActionSink` receiving typed requests once accepted. Without one,
  a well-formed request is answered ``operation-not-supported``.

ESC replies ``<ok/>`` on acceptance; the outcome arrives later as escEvent notifications.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from lxml import etree

from esc_orch.model.errors import ErrorTag, ErrorType, RpcError
from esc_orch.model.schema import ESC_NS
from esc_orch.northbound.rpc import RpcContext, RpcRegistry
from esc_orch.northbound.session import OkReply, Reply


class ActionType(StrEnum):
    START = "START"
    STOP = "STOP"
    REBOOT = "REBOOT"
    ENABLE_MONITOR = "ENABLE_MONITOR"
    DISABLE_MONITOR = "DISABLE_MONITOR"


class RecoveryActionType(StrEnum):
    DO = "DO"


class EscRpc(StrEnum):
    SERVICE_ACTION = "serviceAction"
    VM_ACTION = "vmAction"
    RECOVERY_VM_ACTION = "recoveryVmAction"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceActionRequest:
    action: ActionType
    tenant_name: str
    dep_name: str
    service_name: str = "-"
    service_version: str = "-"


@dataclass(frozen=True, slots=True, kw_only=True)
class VmActionRequest:
    action: ActionType
    vm_name: str
    force: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryVmActionRequest:
    action: RecoveryActionType
    vm_name: str


class EscActionSink(Protocol):
    """Where accepted ESC actions go (the lifecycle engine). Raise ``RpcError`` to reject."""

    async def service_action(self, request: ServiceActionRequest, *, session_id: int) -> None: ...

    async def vm_action(self, request: VmActionRequest, *, session_id: int) -> None: ...

    async def recovery_vm_action(
        self, request: RecoveryVmActionRequest, *, session_id: int
    ) -> None: ...


A = TypeVar("A", ActionType, RecoveryActionType)

RpcValidator = Callable[[etree._Element], None]

NOT_AVAILABLE = "the lifecycle engine is not yet available: {rpc} was validated but not executed"


def _leaves(op: etree._Element, *, allowed: set[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    rpc_name = etree.QName(op).localname
    for child in op:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if qname.namespace != ESC_NS or qname.localname not in allowed:
            raise RpcError(
                tag=ErrorTag.UNKNOWN_ELEMENT,
                type=ErrorType.APPLICATION,
                message=f"unexpected element {qname.localname!r} in {rpc_name}",
                path=(
                    f"/esc:{rpc_name}/esc:{qname.localname}"
                    if qname.namespace == ESC_NS
                    else f"/esc:{rpc_name}"
                ),
                info={"bad-element": qname.localname},
            )
        if qname.localname in values:
            raise RpcError(
                tag=ErrorTag.BAD_ELEMENT,
                message=f"{qname.localname} given twice",
                info={"bad-element": qname.localname},
            )
        values[qname.localname] = (child.text or "").strip()
    return values


def _required(values: dict[str, str], name: str, rpc: str) -> str:
    value = values.get(name)
    if not value:
        raise RpcError(
            tag=ErrorTag.MISSING_ELEMENT,
            type=ErrorType.APPLICATION,
            message=f"{rpc} needs a non-empty {name}",
            path=f"/esc:{rpc}",
            info={"bad-element": name},
        )
    return value


def _enum(value: str, enum: type[A], rpc: str) -> A:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise RpcError(
            tag=ErrorTag.INVALID_VALUE,
            message=f"invalid actionType {value!r} for {rpc} (expected one of {allowed})",
            path=f"/esc:{rpc}/esc:actionType",
            info={"bad-element": "actionType"},
        ) from None


def parse_service_action(op: etree._Element) -> ServiceActionRequest:
    rpc = EscRpc.SERVICE_ACTION
    v = _leaves(
        op, allowed={"actionType", "tenantName", "depName", "serviceName", "serviceVersion"}
    )
    return ServiceActionRequest(
        action=_enum(_required(v, "actionType", rpc), ActionType, rpc),
        tenant_name=_required(v, "tenantName", rpc),
        dep_name=_required(v, "depName", rpc),
        service_name=v.get("serviceName") or "-",
        service_version=v.get("serviceVersion") or "-",
    )


def parse_vm_action(op: etree._Element) -> VmActionRequest:
    rpc = EscRpc.VM_ACTION
    v = _leaves(op, allowed={"actionType", "vmName", "force"})
    force = v.get("force", "false")
    if force not in {"true", "false"}:
        raise RpcError(
            tag=ErrorTag.INVALID_VALUE,
            message=f"force must be true or false, not {force!r}",
            path=f"/esc:{rpc}/esc:force",
            info={"bad-element": "force"},
        )
    return VmActionRequest(
        action=_enum(_required(v, "actionType", rpc), ActionType, rpc),
        vm_name=_required(v, "vmName", rpc),
        force=force == "true",
    )


def parse_recovery_vm_action(op: etree._Element) -> RecoveryVmActionRequest:
    rpc = EscRpc.RECOVERY_VM_ACTION
    v = _leaves(op, allowed={"actionType", "vmName"})
    return RecoveryVmActionRequest(
        action=_enum(_required(v, "actionType", rpc), RecoveryActionType, rpc),
        vm_name=_required(v, "vmName", rpc),
    )


def _not_available(rpc: EscRpc) -> RpcError:
    return RpcError(
        tag=ErrorTag.OPERATION_NOT_SUPPORTED,
        type=ErrorType.APPLICATION,
        message=NOT_AVAILABLE.format(rpc=rpc.value),
    )


def register_esc_rpcs(
    registry: RpcRegistry,
    *,
    sink: EscActionSink | None = None,
    validator: RpcValidator | None = None,
) -> None:
    """Register the three ESC RPCs; see the module docstring for ``sink`` and ``validator``."""

    def check(op: etree._Element) -> None:
        if validator is not None:
            validator(op)

    async def service_action(ctx: RpcContext, op: etree._Element) -> Reply:
        check(op)
        request = parse_service_action(op)
        if sink is None:
            raise _not_available(EscRpc.SERVICE_ACTION)
        await sink.service_action(request, session_id=ctx.session_id)
        return OkReply()

    async def vm_action(ctx: RpcContext, op: etree._Element) -> Reply:
        check(op)
        request = parse_vm_action(op)
        if sink is None:
            raise _not_available(EscRpc.VM_ACTION)
        await sink.vm_action(request, session_id=ctx.session_id)
        return OkReply()

    async def recovery_vm_action(ctx: RpcContext, op: etree._Element) -> Reply:
        check(op)
        request = parse_recovery_vm_action(op)
        if sink is None:
            raise _not_available(EscRpc.RECOVERY_VM_ACTION)
        await sink.recovery_vm_action(request, session_id=ctx.session_id)
        return OkReply()

    registry.register(namespace=ESC_NS, name=EscRpc.SERVICE_ACTION, handler=service_action)
    registry.register(namespace=ESC_NS, name=EscRpc.VM_ACTION, handler=vm_action)
    registry.register(namespace=ESC_NS, name=EscRpc.RECOVERY_VM_ACTION, handler=recovery_vm_action)
