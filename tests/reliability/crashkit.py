"""One crash trial: prepare, kill -9 the real daemon at a named failpoint, restart, check.

A trial runs on a fresh three-host emulated cluster (:class:`functional.lifecycle.support.Cluster`)
and a fresh daemon data directory:

1. a clean daemon configures the VIM connectors and brings deployment ``dep`` (one VM, the
   seed payload on CSP-1, disk on the shared gluster volume) to the operation's starting point,
   then stops;
2. a daemon started with ``ESC_ORCH_FAILPOINTS`` (one or more ``name=kill@N``) is sent the
   operation (an edit-config or an ESC action) and is expected to SIGKILL itself at that point
   (a point the operation never reaches is "n/a": the operation completes without dying);
3. optionally a second crash right after the restart (``again``), then a clean daemon.

The invariants are checked on what is durable and real, never on the daemon's memory: the
durable event log (the SQLite ``event_log`` read directly), the hosts' REST API and their disk
directories, and opdata over NETCONF:

* every event of the operation is logged exactly once, in order, with the type (and update
  type) it has without a crash, and nothing else about ``dep`` is logged;
* exactly one VM per desired instance across all hosts, on the desired host, powered as
  wanted; no other VM of ``dep``, and no disk without its VM;
* the opdata state of the deployment and of its VM match the desired configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from esc_orch import failpoints
from esc_orch.model.events import EscEvent, parse_esc_event
from esc_orch.testing.netns import inside
from functional.lifecycle.support import (
    Cluster,
    connect,
    delete_deployment,
    dep_state,
    edit,
    payload,
    short,
)
from payloads import ESC_NS

DEP = "dep"
#: Settle time after the operation's last event: a duplicate or stray event would come by then.
SETTLE_S = 1.5
EVENT_TIMEOUT_S = 40.0


# ---------------------------------------------------------------------- payload variants


#: Inside a private network namespace (``esc_orch.testing.netns.inside()``, made by
#: ``matrix.py --recovery``): the hosts put their running VMs' addresses on ``lo``, the daemon
#: monitors them (ICMP), and the recovery rows exist. Outside, monitoring is off.
MONITORED = inside()
MONITOR_TOML = """
[vim]
check_interval = 30
check_timeout = 2
[lifecycle]
resync_interval = 600
retry_attempts = 3
retry_base_delay = 0.2
retry_max_delay = 1
[monitor]
allowed_networks = ["192.168.23.0/24"]
vim_interval = 1
script_timeout = 5
scripts_dir = "{scripts}"
"""
#: The seed's monitoring timings scaled down (polls every second, two occurrences).
FAST_MONITORING = (
    ("<poll_frequency>15</poll_frequency>", "<poll_frequency>1</poll_frequency>"),
    ("<metric_occurrences_true>3<", "<metric_occurrences_true>2<"),
    ("<metric_occurrences_false>3<", "<metric_occurrences_false>2<"),
    ("<recovery_wait_time>60<", "<recovery_wait_time>1<"),
    ("<bootup_time>600<", "<bootup_time>6<"),
)


def seed() -> str:
    text = payload("deploy_csp_1.xml")
    if MONITORED:
        for old, new in FAST_MONITORING:
            text = text.replace(old, new)
    return text


def with_flavor() -> str:
    """A second flavor (4 vCPUs) and the group using it: FLAVOR_UPDATED (re-create)."""
    text = seed()
    text = text.replace(
        "</flavors>",
        "<flavor><name>FLAVOR_4_8192_10000</name><vcpus>4</vcpus><memory_mb>8192</memory_mb>"
        "<root_disk_mb>10240</root_disk_mb></flavor></flavors>",
    )
    return text.replace(
        "<flavor>FLAVOR_2_4096_10000</flavor>", "<flavor>FLAVOR_4_8192_10000</flavor>"
    )


def with_interface() -> str:
    """A third interface: INTERFACE_ADDED (re-create)."""
    return seed().replace(
        "</interfaces>",
        "<interface><nicid>2</nicid><type>virtual</type><model>virtio</model>"
        "<network>Eth0-2</network></interface></interfaces>",
    )


def with_image() -> str:
    """Another image: IMAGE_UPDATED (re-create with a new disk)."""
    return seed().replace(
        "<image>csr1000v-universalk9.16.06.01.qcow2</image>",
        "<image>csr1000v-universalk9.16.09.01.qcow2</image>",
    )


def on_csp2() -> str:
    """The group placed on CSP-2 (shared gluster disk): LOCATOR_UPDATED (a move)."""
    return seed().replace("<vim_id>CSP-1</vim_id>", "<vim_id>CSP-2</vim_id>")


def on_local_disk() -> str:
    """The disk on CSP-1's local storage instead of gluster: a copy-disk move."""
    return seed().replace("<value>gluster</value>", "<value>local</value>")


def local_on_csp2() -> str:
    """A local-disk VM placed on CSP-2: a redeploy move (the disk cannot follow)."""
    return on_local_disk().replace("<vim_id>CSP-1</vim_id>", "<vim_id>CSP-2</vim_id>")


def with_recovery_wait() -> str:
    """recovery_wait_time 60 -> 61: a change no VM sees (SERVICE_UPDATED only)."""
    return seed().replace(
        "<recovery_wait_time>60</recovery_wait_time>", "<recovery_wait_time>61</recovery_wait_time>"
    )


# ---------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Final:
    """Where the deployment must end: host and power of its one VM (``None``: undeployed)."""

    host: str | None = "CSP-1"
    power: str = "on"
    state: str = "SERVICE_ACTIVE_STATE"
    vm_state: str = "VM_ALIVE_STATE"


@dataclass(frozen=True)
class Operation:
    name: str
    #: Run by a clean daemon before the crash run (after the connectors are configured).
    prepare: Callable[[Trial], None]
    #: The operation, sent to the daemon armed with failpoints.
    act: Callable[[Trial], None]
    #: ``short()`` kinds of the operation's events of ``dep``, in order, without a crash.
    events: tuple[str, ...]
    final: Final = field(default_factory=Final)


@dataclass
class Trial:
    cluster: Cluster
    #: The generated name of the deployment's VM, once deployed.
    vm: str | None = None


def _rpc(trial: Trial, name: str, **leaves: str) -> None:
    from functional.lifecycle.test_lifecycle_actions import _rpc as rpc  # noqa: PLC0415

    with connect(trial.cluster) as m:
        rpc(m, name, **leaves)


def vm_action(action: str) -> Callable[[Trial], None]:
    def act(trial: Trial) -> None:
        assert trial.vm is not None
        _rpc(trial, "vmAction", actionType=action, vmName=trial.vm, force="false")

    return act


def service_action(action: str) -> Callable[[Trial], None]:
    def act(trial: Trial) -> None:
        _rpc(
            trial,
            "serviceAction",
            actionType=action,
            tenantName="name1",
            depName=DEP,
            serviceName="-",
            serviceVersion="-",
        )

    return act


def editing(body: Callable[[], str]) -> Callable[[Trial], None]:
    def act(trial: Trial) -> None:
        with connect(trial.cluster) as m:
            edit(m, body())

    return act


def recovery_do(trial: Trial) -> None:
    """``recoveryVmAction DO``: a recovery now, by the group's policy (a reboot)."""
    assert trial.vm is not None
    _rpc(trial, "recoveryVmAction", actionType="DO", vmName=trial.vm)


def vm_down(trial: Trial) -> None:
    """The VM stopped behind the daemon's back (on its host): monitoring sees it die."""
    assert trial.vm is not None
    vm = trial.vm

    async def patch() -> int:
        status, _, _ = await trial.cluster.hosts["CSP-1"].request(
            "PATCH", f"/api/running/services/service/{vm}", body={"service": {"power": "off"}}
        )
        return status

    assert asyncio.run(patch()) in (200, 204)


def undeploying(trial: Trial) -> None:
    with connect(trial.cluster) as m:
        delete_deployment(m, dep=DEP)


def nothing(trial: Trial) -> None:
    return None


def deployed(trial: Trial) -> None:
    deployed_as(seed)(trial)


def deployed_as(body: Callable[[], str]) -> Callable[[Trial], None]:
    def prepare(trial: Trial) -> None:
        editing(body)(trial)
        wait_events(trial, ("VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE"), since=0)
        trial.vm = vm_name(trial)

    return prepare


def deployed_then(
    action: Callable[[Trial], None], events: tuple[str, ...]
) -> Callable[[Trial], None]:
    def prepare(trial: Trial) -> None:
        deployed(trial)
        since = last_event_id(trial)
        action(trial)
        wait_events(trial, events, since=since)

    return prepare


UPDATED = "SERVICE_UPDATED"
OFF = Final(power="off", state="SERVICE_STOPPED_STATE", vm_state="VM_STOPPED_STATE")
SVC_OFF = Final(power="off", state="SERVICE_STOPPED_STATE", vm_state="VM_STOPPED_STATE")

RECOVERED = ("VM_RECOVERY_INIT", "VM_RECOVERY_REBOOT", "VM_RECOVERY_COMPLETE")
#: Only inside a namespace (:data:`MONITORED`): recovery needs the VM's address to answer.
RECOVERIES = (
    Operation("recovery-vm-down", deployed, vm_down, RECOVERED),
    Operation("recovery-DO", deployed, recovery_do, RECOVERED),
)

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        *(RECOVERIES if MONITORED else ()),
        Operation("deploy", nothing, editing(seed), ("VM_DEPLOYED", "VM_ALIVE", "SERVICE_ALIVE")),
        Operation(
            "update-flavor", deployed, editing(with_flavor), ("VM_UPDATED FLAVOR_UPDATED", UPDATED)
        ),
        Operation(
            "update-interface",
            deployed,
            editing(with_interface),
            ("VM_UPDATED INTERFACE_ADDED", UPDATED),
        ),
        Operation(
            "update-image", deployed, editing(with_image), ("VM_UPDATED IMAGE_UPDATED", UPDATED)
        ),
        Operation(
            "update-locator",
            deployed,
            editing(on_csp2),
            ("VM_UPDATED LOCATOR_UPDATED", UPDATED),
            Final(host="CSP-2"),
        ),
        Operation(
            "move-copy-disk",
            deployed,
            editing(on_local_disk),
            ("VM_UPDATED LOCATOR_UPDATED", UPDATED),
        ),
        Operation(
            "move-redeploy",
            deployed_as(on_local_disk),
            editing(local_on_csp2),
            ("VM_UPDATED LOCATOR_UPDATED", UPDATED),
            Final(host="CSP-2"),
        ),
        Operation("update-no-vm-change", deployed, editing(with_recovery_wait), (UPDATED,)),
        Operation(
            "undeploy",
            deployed,
            undeploying,
            ("VM_UNDEPLOYED", "SERVICE_UNDEPLOYED"),
            Final(host=None),
        ),
        Operation("vmAction-STOP", deployed, vm_action("STOP"), ("VM_STOPPED",), OFF),
        Operation(
            "vmAction-START",
            deployed_then(vm_action("STOP"), ("VM_STOPPED",)),
            vm_action("START"),
            ("VM_STARTED",),
        ),
        Operation("vmAction-REBOOT", deployed, vm_action("REBOOT"), ("VM_REBOOTED",)),
        Operation(
            "serviceAction-STOP",
            deployed,
            service_action("STOP"),
            ("VM_STOPPED", "SERVICE_STOPPED"),
            SVC_OFF,
        ),
        Operation(
            "serviceAction-START",
            deployed_then(service_action("STOP"), ("VM_STOPPED", "SERVICE_STOPPED")),
            service_action("START"),
            ("VM_STARTED", "SERVICE_STARTED"),
        ),
        Operation(
            "serviceAction-REBOOT",
            deployed,
            service_action("REBOOT"),
            ("VM_REBOOTED", "SERVICE_REBOOTED"),
        ),
    )
}


# ---------------------------------------------------------------------- the durable log


#: The daemon's store: ``None`` is SQLite in its data directory; else a SQLAlchemy URL (the
#: PostgreSQL form of the matrix, test_crash_matrix_pg.py), written to ``[store] url``.
STORE_URL: str | None = None


def _db(trial: Trial) -> Path:
    return trial.cluster.root / "orchd" / "esc-orch.sqlite"


def _rows(trial: Trial, sql: str, since: int) -> list[tuple[Any, ...]]:
    """``sql`` (one ``:since`` parameter) on the daemon's durable store, read directly."""
    if STORE_URL is not None:
        from sqlalchemy import create_engine, text  # noqa: PLC0415 - PostgreSQL runs only

        engine = create_engine(STORE_URL)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), {"since": since})]
        finally:
            engine.dispose()
    path = _db(trial)
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute(sql.replace(":since", "?"), (since,)).fetchall()


def logged(trial: Trial, *, since: int) -> list[tuple[int, EscEvent]]:
    """The durable events of ``dep`` after event id ``since`` (config events left out)."""
    try:
        rows = _rows(
            trial, "SELECT id, payload FROM event_log WHERE id > :since ORDER BY id", since
        )
    except Exception as exc:  # the daemon has not created its tables yet
        if STORE_URL is not None and "event_log" in str(exc):
            return []
        raise
    out = []
    for event_id, body in rows:
        raw = body.encode() if isinstance(body, str) else bytes(body)
        element = etree.fromstring(raw)
        found = (
            element
            if element.tag == f"{{{ESC_NS}}}escEvent"
            else element.find(f".//{{{ESC_NS}}}escEvent")
        )
        if found is None:
            continue
        event = parse_esc_event(found)
        if event.depname == DEP:
            out.append((int(event_id), event))
    return out


def last_event_id(trial: Trial) -> int:
    ((value,),) = _rows(trial, "SELECT COALESCE(MAX(id), 0) FROM event_log WHERE 0 <= :since", 0)
    return int(value)


def kinds(trial: Trial, *, since: int) -> list[str]:
    return [short(e) for _, e in logged(trial, since=since)]


def wait_events(
    trial: Trial, expected: tuple[str, ...], *, since: int, timeout: float = EVENT_TIMEOUT_S
) -> list[str]:
    """Wait until the operation's last expected event is logged, then settle; the kinds."""
    deadline = time.monotonic() + timeout
    last = expected[-1]
    while time.monotonic() < deadline:
        got = kinds(trial, since=since)
        if got.count(last) >= expected.count(last):
            time.sleep(SETTLE_S)
            return kinds(trial, since=since)
        time.sleep(0.1)
    return kinds(trial, since=since)


def vm_name(trial: Trial) -> str:
    for _, event in logged(trial, since=0):
        if event.vm_source is not None and event.vm_source.vmname:
            return event.vm_source.vmname
    raise AssertionError("no VM event names the VM")


# ---------------------------------------------------------------------- the trial


@dataclass
class Result:
    operation: str
    points: tuple[str, ...]
    fired: bool = False
    problems: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.fired and not self.problems

    @property
    def cell(self) -> str:
        if not self.fired:
            return "n/a"
        return "pass" if not self.problems else "FAIL"


def _crash_run(trial: Trial, op: Operation, points: str, *, act: bool, since: int) -> bool:
    """Start a daemon armed with ``points``, send the operation; True if it killed itself."""
    cluster = trial.cluster
    try:
        cluster.start_daemon(env={failpoints.ENV: points})
    except RuntimeError:  # it killed itself while starting (resuming the cut run)
        assert cluster.daemon is not None and cluster.daemon.proc is not None
        return cluster.daemon.proc.returncode == -9
    assert cluster.daemon is not None and cluster.daemon.proc is not None
    if act:
        with contextlib.suppress(Exception):  # it may die before it replies
            op.act(trial)
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    done_at: float | None = None
    while time.monotonic() < deadline:
        if cluster.daemon.proc.poll() is not None:
            return cluster.daemon.proc.returncode == -9
        got = kinds(trial, since=since)
        if done_at is None and got.count(op.events[-1]) >= op.events.count(op.events[-1]):
            done_at = time.monotonic()
        if done_at is not None and time.monotonic() - done_at > SETTLE_S:
            break
        time.sleep(0.1)
    cluster.daemon.stop()
    return False


def run_trial(root: Path, operation: str, point: str, *, again: str | None = None) -> Result:
    """One trial of ``operation`` killed at ``point`` (and at ``again`` after the restart)."""
    op = OPERATIONS[operation]
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root)
    if MONITORED:
        for host in cluster.hosts.values():
            host.extra_args = [*host.extra_args, "--guest-net", "netns"]
        scripts = root / "scripts"  # the seed's rule action runs servicebooted.sh
        scripts.mkdir(exist_ok=True)
        (scripts / "servicebooted.sh").write_text("#!/bin/sh\nexit 0\n")
        (scripts / "servicebooted.sh").chmod(0o755)
        cluster.config.write_text(MONITOR_TOML.format(scripts=scripts))
    if STORE_URL is not None:
        with cluster.config.open("a") as fh:
            fh.write(f'[store]\nurl = "{STORE_URL}"\n')
    trial = Trial(cluster=cluster)
    result = Result(operation=operation, points=(point,) if again is None else (point, again))
    try:
        cluster.start_hosts()
        cluster.start_daemon()
        with connect(cluster) as m:
            edit(m, f"<config>{cluster.connectors_xml()}</config>")
        op.prepare(trial)
        cluster.daemon.stop()  # type: ignore[union-attr]
        since = last_event_id(trial)
        if point == "none":  # the reference: the operation without a crash
            result.fired = True
            cluster.start_daemon()
            op.act(trial)
            result.events = wait_events(trial, op.events, since=since)
            result.problems += check(trial, op, since=since, events=result.events)
            return result
        result.fired = _crash_run(trial, op, point, act=True, since=since)
        if not result.fired:
            return result
        if again is not None and not _crash_run(trial, op, again, act=False, since=since):
            result.problems.append(f"the second failpoint {again} did not fire")
        cluster.start_daemon()
        result.events = wait_events(trial, op.events, since=since)
        result.problems += check(trial, op, since=since, events=result.events)
    except Exception as exc:  # a trial that breaks is a failed cell, with why
        result.fired = True
        result.problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        cluster.close()
    return result


def check(trial: Trial, op: Operation, *, since: int, events: list[str]) -> list[str]:
    """The invariants after the restart (see the module docstring); what does not hold."""
    problems: list[str] = []
    if events != list(op.events):
        problems.append(f"events {events}, expected {list(op.events)}")
    return problems + check_world(trial, op)


def check_world(trial: Trial, op: Operation) -> list[str]:
    """The hosts, their disks and opdata against ``op.final`` (the events left aside)."""
    problems: list[str] = []
    cluster = trial.cluster
    where = {vm: hosts for vm, hosts in cluster.all_services().items() if f"{DEP}_" in vm}
    final = op.final
    if final.host is None:
        if where:
            problems.append(f"VMs left after undeploy: {where}")
    elif len(where) != 1 or next(iter(where.values())) != [final.host]:
        problems.append(f"VM copies {where}, expected one on {final.host}")
    else:
        (vm,) = where
        power = cluster.services(final.host)[vm]
        if power != final.power:
            problems.append(f"{vm} is {power} on {final.host}, expected {final.power}")
    problems += orphan_disks(cluster, set(where))
    with connect(cluster) as m:
        state = dep_state(m, dep=DEP)
    if final.host is None:
        if state:
            problems.append(f"opdata still shows {DEP}: {state}")
    else:
        if state.get("state") != final.state:
            problems.append(f"opdata state {state.get('state')}, expected {final.state}")
        if sorted(state.get("vms", {}).values()) != [final.vm_state]:
            problems.append(f"opdata VM states {state.get('vms')}, expected [{final.vm_state}]")
        hosts = [i[2] for i in state.get("instances", [])]
        if len(hosts) != 1:
            problems.append(f"opdata instances {state.get('instances')}")
    return problems


def orphan_disks(cluster: Cluster, vms: set[str]) -> list[str]:
    """Disk files of ``dep`` on the gluster volume or a host's local storage with no VM."""
    host = next(iter(cluster.hosts.values()))
    dirs = [host.gluster_dir] + [h.local_dir for h in cluster.hosts.values()]
    disks = {p.stem for d in dirs if d.exists() for p in d.glob(f"{DEP}_*.qcow2")}
    extra = sorted(disks - vms)
    return [f"orphan disks {extra}"] if extra else []
