"""The RFC 6241 base operations, as registry handlers over the ``ConfigBackend`` port.

Each handler parses its operation element strictly (unknown or missing parameters are
``rpc-error``s naming the element), applies the lock rules through ``NetconfCore`` and calls
the backend in a worker thread. What the datastore does (merge semantics, validation) is the
backend's business; what NETCONF requires around it (which datastores exist, who holds a
lock, filtering the reply) is decided here.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import TypeVar

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, ErrorTag, ErrorType, RpcError
from esc_orch.northbound.backend import Datastore, DefaultOperation, ErrorOption, TestOption
from esc_orch.northbound.filters import KeyResolver, apply_filter
from esc_orch.northbound.rpc import RpcContext, RpcRegistry
from esc_orch.northbound.session import DataReply, OkReply, Reply, SerializedDataReply

# The datastores this server implements (startup is not: it is not announced either).
SUPPORTED_DATASTORES = (Datastore.RUNNING, Datastore.CANDIDATE)

E = TypeVar("E", DefaultOperation, TestOption, ErrorOption)


def _is_nc(qname: etree.QName) -> bool:
    """Parameters are in the base namespace; unqualified ones are accepted too (ncclient
    users often send a bare ``<config>``)."""
    return qname.namespace in (NC_BASE_NS, None)


def _find(op: etree._Element, name: str) -> etree._Element | None:
    for child in op:
        if isinstance(child.tag, str):
            qname = etree.QName(child)
            if qname.localname == name and _is_nc(qname):
                return child
    return None


def _bad(tag: ErrorTag, message: str, element: str) -> RpcError:
    return RpcError(
        tag=tag, type=ErrorType.PROTOCOL, message=message, info={"bad-element": element}
    )


def _check_children(op: etree._Element, allowed: set[str]) -> None:
    for child in op:
        if not isinstance(child.tag, str):
            continue
        qname = etree.QName(child)
        if not _is_nc(qname) or qname.localname not in allowed:
            raise _bad(
                ErrorTag.UNKNOWN_ELEMENT,
                f"unexpected parameter {qname.localname!r} in {etree.QName(op).localname}",
                qname.localname,
            )


def _param(op: etree._Element, name: str, *, required: bool = False) -> etree._Element | None:
    el = _find(op, name)
    if el is None and required:
        raise _bad(
            ErrorTag.MISSING_ELEMENT,
            f"{etree.QName(op).localname} needs a <{name}> parameter",
            name,
        )
    return el


def _datastore(
    op: etree._Element, name: str, *, allow_config: bool = False
) -> Datastore | etree._Element:
    """Parse ``<source>``/``<target>``: a datastore, or (when allowed) an inline ``<config>``."""
    holder = _param(op, name, required=True)
    assert holder is not None
    choices = [child for child in holder if isinstance(child.tag, str)]
    if len(choices) != 1:
        raise _bad(ErrorTag.MISSING_ELEMENT, f"<{name}> needs exactly one datastore", name)
    choice = choices[0]
    qname = etree.QName(choice)
    if _is_nc(qname) and qname.localname == "config" and allow_config:
        return choice
    if _is_nc(qname) and qname.localname == "url":
        raise _bad(ErrorTag.OPERATION_NOT_SUPPORTED, "the :url capability is not supported", "url")
    if _is_nc(qname):
        for ds in SUPPORTED_DATASTORES:
            if qname.localname == ds.value:
                return ds
    raise _bad(
        ErrorTag.INVALID_VALUE, f"unsupported datastore {qname.localname!r}", qname.localname
    )


def _datastore_only(op: etree._Element, name: str) -> Datastore:
    ds = _datastore(op, name)
    assert isinstance(ds, Datastore)
    return ds


def _enum_param(op: etree._Element, name: str, enum: type[E], default: E) -> E:
    el = _param(op, name)
    if el is None:
        return default
    value = (el.text or "").strip()
    try:
        return enum(value)
    except ValueError:
        raise _bad(ErrorTag.INVALID_VALUE, f"invalid {name} {value!r}", name) from None


def merge_state(config: etree._Element, state: etree._Element) -> etree._Element:
    """Config and state in one ``<data>``: a state top node whose container also exists in
    the config (``esc_datamodel`` holding ``opdata``) has its children moved into it."""
    by_tag = {node.tag: node for node in config if isinstance(node.tag, str)}
    for node in list(state):
        if not isinstance(node.tag, str):
            continue
        existing = by_tag.get(node.tag)
        if existing is None:
            config.append(node)
        else:
            existing.extend(list(node))
    return config


def register_base_operations(
    registry: RpcRegistry, *, key_leaves: KeyResolver | None = None
) -> None:
    """Register get, get-config, edit-config, copy/delete-config, lock/unlock, validate,
    commit, discard-changes, close-session and kill-session on ``registry``."""

    def filter_of(ctx: RpcContext, op: etree._Element) -> etree._Element | None:
        """The ``<filter>`` parameter, refused as ``too-big`` beyond ``max_filter_nodes``."""
        flt = _find(op, "filter")
        if flt is None:
            return None
        limit = ctx.core.limits.max_filter_nodes
        if sum(1 for _ in itertools.islice(flt.iter(), limit + 1)) > limit:
            raise RpcError(
                tag=ErrorTag.TOO_BIG,
                type=ErrorType.PROTOCOL,
                message=f"the filter has more than {limit} nodes",
                info={"bad-element": "filter"},
            )
        return flt

    async def filtered(data: etree._Element, flt: etree._Element | None) -> etree._Element:
        """Filter in a worker thread: a large tree or filter must not hold the event loop."""
        if key_leaves is None:
            return await asyncio.to_thread(apply_filter, data, flt)
        return await asyncio.to_thread(apply_filter, data, flt, key_leaves=key_leaves)

    def reg(name: str) -> Callable[..., object]:
        return registry.operation(namespace=NC_BASE_NS, name=name)

    @reg("get-config")
    async def get_config(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"source", "filter", "with-defaults"})
        source = _datastore_only(op, "source")
        flt = filter_of(ctx, op)
        # Reads take their own snapshot: they never wait behind an edit in progress.
        snapshots = ctx.core.snapshots
        if source is Datastore.RUNNING and flt is None and snapshots is not None:
            cached = snapshots.running_xml_cached()
            content = cached if cached is not None else await ctx.core.read(snapshots.running_xml)
            return SerializedDataReply(content)
        data = await ctx.core.read(lambda: ctx.core.backend.get_config(source=source))
        return DataReply(await filtered(data, flt))

    @reg("get")
    async def get(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"filter", "with-defaults"})
        flt = filter_of(ctx, op)

        def read() -> etree._Element:
            data = merge_state(
                ctx.core.backend.get_config(source=Datastore.RUNNING),
                ctx.core.backend.get_state(),
            )
            for provider in ctx.core.state_providers:
                data = merge_state(data, provider())
            return data

        return DataReply(await filtered(await ctx.core.read(read), flt))

    @reg("edit-config")
    async def edit_config(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(
            op, {"target", "default-operation", "test-option", "error-option", "config", "url"}
        )
        target = _datastore_only(op, "target")
        if _find(op, "url") is not None:
            raise _bad(
                ErrorTag.OPERATION_NOT_SUPPORTED, "the :url capability is not supported", "url"
            )
        config = _param(op, "config", required=True)
        assert config is not None
        default_op = _enum_param(op, "default-operation", DefaultOperation, DefaultOperation.MERGE)
        test_opt = _enum_param(op, "test-option", TestOption, TestOption.TEST_THEN_SET)
        error_opt = _enum_param(op, "error-option", ErrorOption, ErrorOption.STOP_ON_ERROR)
        await ctx.core.run_edit(
            lambda: ctx.core.backend.edit_config(
                target=target,
                config=config,
                default_operation=default_op,
                test_option=test_opt,
                error_option=error_opt,
            ),
            before=lambda: ctx.core.locks.check_writable([target], ctx.session_id),
        )
        return OkReply()

    @reg("copy-config")
    async def copy_config(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"target", "source", "with-defaults"})
        target = _datastore_only(op, "target")
        source = _datastore(op, "source", allow_config=True)
        if source == target:
            raise _bad(ErrorTag.INVALID_VALUE, "source and target are the same datastore", "target")
        await ctx.core.run(
            lambda: ctx.core.backend.copy_config(target=target, source=source),
            before=lambda: ctx.core.locks.check_writable([target], ctx.session_id),
        )
        return OkReply()

    @reg("delete-config")
    async def delete_config(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"target"})
        target = _datastore_only(op, "target")
        raise _bad(
            ErrorTag.INVALID_VALUE,
            f"the {target} datastore cannot be deleted (only startup can; it is not implemented)",
            "target",
        )

    @reg("lock")
    async def lock(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"target"})
        target = _datastore_only(op, "target")

        def acquire() -> None:
            free = ctx.core.locks.holder(target) is None
            if free and target is Datastore.CANDIDATE and ctx.core.backend.candidate_is_dirty():
                raise RpcError(
                    tag=ErrorTag.LOCK_DENIED,
                    type=ErrorType.PROTOCOL,
                    message="the candidate holds uncommitted changes; commit or discard first",
                    info={"session-id": "0"},
                )
            ctx.core.locks.acquire(target, ctx.session_id)

        await ctx.core.run(acquire)
        return OkReply()

    @reg("unlock")
    async def unlock(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"target"})
        target = _datastore_only(op, "target")

        def release() -> None:
            ctx.core.locks.release(target, ctx.session_id)
            if target is Datastore.CANDIDATE:
                ctx.core.backend.discard_changes()  # changes abandoned with the lock

        await ctx.core.run(release)
        return OkReply()

    @reg("validate")
    async def validate(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"source"})
        source = _datastore(op, "source", allow_config=True)
        await ctx.core.run(lambda: ctx.core.backend.validate(source=source))
        return OkReply()

    @reg("commit")
    async def commit(ctx: RpcContext, op: etree._Element) -> Reply:
        for child in op:
            if isinstance(child.tag, str):
                name = etree.QName(child).localname
                raise _bad(
                    ErrorTag.OPERATION_NOT_SUPPORTED
                    if name in {"confirmed", "confirm-timeout", "persist", "persist-id"}
                    else ErrorTag.UNKNOWN_ELEMENT,
                    f"commit parameter {name!r} is not supported (no :confirmed-commit)",
                    name,
                )
        await ctx.core.run(
            ctx.core.backend.commit,
            before=lambda: ctx.core.locks.check_writable(
                [Datastore.RUNNING, Datastore.CANDIDATE], ctx.session_id
            ),
        )
        return OkReply()

    @reg("discard-changes")
    async def discard_changes(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, set())
        await ctx.core.run(
            ctx.core.backend.discard_changes,
            before=lambda: ctx.core.locks.check_writable([Datastore.CANDIDATE], ctx.session_id),
        )
        return OkReply()

    @reg("close-session")
    async def close_session(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, set())
        ctx.close_after_reply = True
        return OkReply()

    @reg("kill-session")
    async def kill_session(ctx: RpcContext, op: etree._Element) -> Reply:
        _check_children(op, {"session-id"})
        el = _param(op, "session-id", required=True)
        assert el is not None
        text = (el.text or "").strip()
        if not text.isdigit() or int(text) == 0:
            raise _bad(ErrorTag.INVALID_VALUE, f"invalid session-id {text!r}", "session-id")
        await ctx.core.kill_session(target=int(text), by=ctx.session_id)
        return OkReply()
