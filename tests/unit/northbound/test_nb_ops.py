"""Base operations and ESC RPCs through the registry and core, without a transport."""

from __future__ import annotations

import asyncio
import threading

from lxml import etree

from esc_orch.model.errors import RpcError, RpcErrors
from esc_orch.northbound.backend import Datastore
from nbsupport.inproc import ESC, NC, InprocClient, error_info, error_tag, is_ok, make_core
from nbsupport.memory_backend import MemoryBackend

TENANT = (
    '<config><esc_datamodel xmlns="{esc}"><tenants><tenant><name>{name}</name></tenant>'
    "</tenants></esc_datamodel></config>"
)


def _edit(target: str, name: str = "T1", extra: str = "") -> str:
    return (
        f"<edit-config><target><{target}/></target>{extra}"
        f"{TENANT.format(esc=ESC, name=name)}</edit-config>"
    )


async def test_edit_and_get_config_running() -> None:
    c = InprocClient(make_core())
    assert is_ok(await c.rpc(_edit("running")))
    reply = await c.rpc("<get-config><source><running/></source></get-config>")
    assert reply.findtext(f".//{{{ESC}}}name") == "T1"


async def test_get_merges_state_into_the_config_tree() -> None:
    backend = MemoryBackend()
    core = make_core(backend)
    c = InprocClient(core)
    await c.rpc(_edit("running"))
    backend.state.append(
        etree.fromstring(
            f'<esc_datamodel xmlns="{ESC}"><opdata><tenants/></opdata></esc_datamodel>'
        )
    )
    reply = await c.rpc("<get/>")
    data = reply.find(f"{{{NC}}}data")
    assert data is not None
    tops = data.findall(f"{{{ESC}}}esc_datamodel")
    assert len(tops) == 1  # one esc_datamodel holding tenants and opdata
    assert tops[0].find(f"{{{ESC}}}opdata") is not None


async def test_candidate_commit_and_discard() -> None:
    backend = MemoryBackend()
    c = InprocClient(make_core(backend))
    assert is_ok(await c.rpc(_edit("candidate")))
    assert backend.candidate_is_dirty()
    running = await c.rpc("<get-config><source><running/></source></get-config>")
    assert running.find(f".//{{{ESC}}}name") is None
    assert is_ok(await c.rpc("<commit/>"))
    running = await c.rpc("<get-config><source><running/></source></get-config>")
    assert running.findtext(f".//{{{ESC}}}name") == "T1"
    await c.rpc(_edit("candidate", "T2"))
    assert is_ok(await c.rpc("<discard-changes/>"))
    assert not backend.candidate_is_dirty()


async def test_lock_denied_names_the_holder_and_edits_are_in_use() -> None:
    core = make_core()
    a, b = InprocClient(core), InprocClient(core)
    assert is_ok(await a.rpc("<lock><target><running/></target></lock>"))
    denied = await b.rpc("<lock><target><running/></target></lock>")
    assert error_tag(denied) == "lock-denied"
    assert error_info(denied, "session-id") == str(a.session_id)
    in_use = await b.rpc(_edit("running"))
    assert error_tag(in_use) == "in-use"
    assert error_info(in_use, "session-id") == str(a.session_id)
    assert is_ok(await a.rpc(_edit("running")))  # the holder may edit
    assert (
        error_tag(await b.rpc("<unlock><target><running/></target></unlock>")) == "operation-failed"
    )
    assert is_ok(await a.rpc("<unlock><target><running/></target></unlock>"))
    assert is_ok(await b.rpc("<lock><target><running/></target></lock>"))


async def test_commit_is_refused_while_another_session_locks_running() -> None:
    core = make_core()
    a, b = InprocClient(core), InprocClient(core)
    await a.rpc("<lock><target><running/></target></lock>")
    await b.rpc(_edit("candidate"))
    assert error_tag(await b.rpc("<commit/>")) == "in-use"


async def test_locks_die_with_their_session_and_candidate_changes_are_discarded() -> None:
    backend = MemoryBackend()
    core = make_core(backend)
    a, b = InprocClient(core), InprocClient(core)
    assert is_ok(await a.rpc("<lock><target><candidate/></target></lock>"))
    await a.rpc(_edit("candidate"))
    await a.close()
    assert not backend.candidate_is_dirty()
    assert is_ok(await b.rpc("<lock><target><candidate/></target></lock>"))


async def test_lock_on_a_dirty_candidate_is_refused() -> None:
    core = make_core()
    a = InprocClient(core)
    await a.rpc(_edit("candidate"))
    reply = await a.rpc("<lock><target><candidate/></target></lock>")
    assert error_tag(reply) == "lock-denied"
    assert error_info(reply, "session-id") == "0"


async def test_kill_session() -> None:
    core = make_core()
    a, b = InprocClient(core), InprocClient(core)
    await b.rpc("<lock><target><running/></target></lock>")
    self_kill = await a.rpc(f"<kill-session><session-id>{a.session_id}</session-id></kill-session>")
    assert error_tag(self_kill) == "invalid-value"
    assert error_tag(await a.rpc("<kill-session><session-id>999</session-id></kill-session>")) == (
        "invalid-value"
    )
    assert is_ok(
        await a.rpc(f"<kill-session><session-id>{b.session_id}</session-id></kill-session>")
    )
    assert b.terminated is not None
    assert core.locks.holder(Datastore.RUNNING) is None


async def test_close_session_asks_the_transport_to_close() -> None:
    c = InprocClient(make_core())
    assert is_ok(await c.rpc("<close-session/>"))
    assert c.closed


async def test_unknown_operation_and_parameters() -> None:
    c = InprocClient(make_core())
    assert error_tag(await c.rpc('<frobnicate xmlns="urn:x"/>')) == "operation-not-supported"
    assert error_tag(await c.rpc("<get><bogus/></get>")) == "unknown-element"
    assert error_tag(await c.rpc("<get-config/>")) == "missing-element"
    assert error_tag(await c.rpc("<get-config><source><startup/></source></get-config>")) == (
        "invalid-value"
    )
    url = "<edit-config><target><running/></target><url>file:///x</url></edit-config>"
    assert error_tag(await c.rpc(url)) == "operation-not-supported"
    bad_opt = _edit("running", extra="<default-operation>squash</default-operation>")
    assert error_tag(await c.rpc(bad_opt)) == "invalid-value"
    assert error_tag(await c.rpc("<delete-config><target><running/></target></delete-config>")) == (
        "invalid-value"
    )


async def test_backend_errors_are_rendered() -> None:
    c = InprocClient(make_core())
    body = (
        "<edit-config><target><running/></target><config>"
        f'<esc_datamodel xmlns="{ESC}"><invalid/></esc_datamodel></config></edit-config>'
    )
    reply = await c.rpc(body)
    assert error_tag(reply) == "invalid-value"
    assert reply.findtext(f".//{{{NC}}}error-path") == "/esc:esc_datamodel/esc:invalid"


async def test_validate_and_copy_config() -> None:
    c = InprocClient(make_core())
    assert is_ok(await c.rpc("<validate><source><running/></source></validate>"))
    assert is_ok(
        await c.rpc(f"<validate><source>{TENANT.format(esc=ESC, name='X')}</source></validate>")
    )
    copy = (
        "<copy-config><target><candidate/></target>"
        f"<source>{TENANT.format(esc=ESC, name='C')}</source></copy-config>"
    )
    assert is_ok(await c.rpc(copy))
    assert is_ok(
        await c.rpc(
            "<copy-config><target><running/></target><source><candidate/></source></copy-config>"
        )
    )
    reply = await c.rpc("<get-config><source><running/></source></get-config>")
    assert reply.findtext(f".//{{{ESC}}}name") == "C"


async def test_esc_rpcs_validate_input_then_report_not_available() -> None:
    c = InprocClient(make_core())
    ok_input = (
        f'<serviceAction xmlns="{ESC}"><actionType>START</actionType><tenantName>T</tenantName>'
        "<depName>D</depName><serviceName>-</serviceName><serviceVersion>-</serviceVersion>"
        "</serviceAction>"
    )
    reply = await c.rpc(ok_input)
    assert error_tag(reply) == "operation-not-supported"
    assert "lifecycle engine" in (reply.findtext(f".//{{{NC}}}error-message") or "")
    bad_enum = (
        f'<vmAction xmlns="{ESC}"><actionType>EXPLODE</actionType><vmName>v</vmName></vmAction>'
    )
    assert error_tag(await c.rpc(bad_enum)) == "invalid-value"
    missing = f'<recoveryVmAction xmlns="{ESC}"><actionType>DO</actionType></recoveryVmAction>'
    reply = await c.rpc(missing)
    assert error_tag(reply) == "missing-element"
    assert error_info(reply, "bad-element") == "vmName"
    unknown = (
        f'<vmAction xmlns="{ESC}"><actionType>STOP</actionType><vmName>v</vmName><x/></vmAction>'
    )
    assert error_tag(await c.rpc(unknown)) == "unknown-element"
    bad_force = (
        f'<vmAction xmlns="{ESC}"><actionType>STOP</actionType><vmName>v</vmName>'
        "<force>yes</force></vmAction>"
    )
    assert error_tag(await c.rpc(bad_force)) == "invalid-value"


async def test_a_read_never_waits_behind_an_edit_in_progress() -> None:
    """get-config and get run outside the datastore mutex (the backend reads a snapshot)."""

    class SlowEdits(MemoryBackend):
        def __init__(self) -> None:
            super().__init__()
            self.inside, self.release = threading.Event(), threading.Event()

        def edit_config(self, **kwargs: object) -> object:
            self.inside.set()
            assert self.release.wait(timeout=10)
            return super().edit_config(**kwargs)  # type: ignore[arg-type]

    backend = SlowEdits()
    core = make_core(backend)
    editor, reader = InprocClient(core), InprocClient(core)
    edit = asyncio.ensure_future(editor.rpc(_edit("running")))
    try:
        assert await asyncio.to_thread(backend.inside.wait, 10)
        for read in ("<get-config><source><running/></source></get-config>", "<get/>"):
            reply = await asyncio.wait_for(reader.rpc(read), timeout=5)
            assert reply.find(f"{{{NC}}}data") is not None
            assert reply.find(f".//{{{ESC}}}name") is None  # the edit is not visible yet
    finally:
        backend.release.set()
        assert is_ok(await edit)


class _GroupingBackend(MemoryBackend):
    """A backend with ``run_group`` whose first edit blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[int] = []
        self.inside, self.release = threading.Event(), threading.Event()

    def edit_config(self, **kwargs: object) -> object:
        if not self.inside.is_set():
            self.inside.set()
            assert self.release.wait(timeout=10)
        return super().edit_config(**kwargs)  # type: ignore[arg-type]

    def run_group(self, thunks: list[object]) -> list[tuple[bool, object]]:
        self.groups.append(len(thunks))
        results: list[tuple[bool, object]] = []
        for thunk in thunks:
            try:
                results.append((True, thunk()))  # type: ignore[operator]
            except (RpcError, RpcErrors) as exc:
                results.append((False, exc))
        return results


async def test_edits_queued_meanwhile_are_committed_as_one_group() -> None:
    backend = _GroupingBackend()
    core = make_core(backend)
    first = asyncio.ensure_future(InprocClient(core).rpc(_edit("running", "T1")))
    assert await asyncio.to_thread(backend.inside.wait, 10)
    queued = [asyncio.ensure_future(InprocClient(core).rpc(_edit("running", n))) for n in "AB"]
    await asyncio.sleep(0)  # both are queued behind the first
    backend.release.set()
    assert is_ok(await first)
    assert all(is_ok(r) for r in await asyncio.gather(*queued))
    assert backend.groups == [1, 2]


async def test_a_group_never_takes_an_edit_that_arrived_after_a_lock() -> None:
    """RFC 6241 order: the lock, queued between two edits, is granted after the first and
    before the second, which is then refused (in-use) as if they had run one by one."""
    backend = _GroupingBackend()
    core = make_core(backend)
    blocker = asyncio.ensure_future(InprocClient(core).rpc(_edit("running", "T0")))
    assert await asyncio.to_thread(backend.inside.wait, 10)
    locker = InprocClient(core)
    before_lock = asyncio.ensure_future(InprocClient(core).rpc(_edit("running", "T1")))
    await asyncio.sleep(0)
    lock = asyncio.ensure_future(locker.rpc("<lock><target><running/></target></lock>"))
    await asyncio.sleep(0)
    after_lock = asyncio.ensure_future(InprocClient(core).rpc(_edit("running", "T2")))
    await asyncio.sleep(0)
    backend.release.set()
    assert is_ok(await blocker)
    assert is_ok(await before_lock)
    assert is_ok(await lock)
    refused = await after_lock
    assert error_tag(refused) == "in-use"
    assert error_info(refused, "session-id") == str(locker.session_id)


def test_the_fast_paths_are_typed_ports_decided_once() -> None:
    """A backend with ``run_group`` is a GroupCommitBackend and the core groups through it;
    a plain one has neither fast path (no attribute probing per request)."""
    plain = make_core(MemoryBackend())
    assert plain.grouping is None and plain.snapshots is None
    grouping = _GroupingBackend()
    core = make_core(grouping)
    assert core.grouping is grouping and core.snapshots is None
