"""The invariants of a load run, checked on what is durable and real after it.

The durable event log (SQLite ``event_log``) against what each subscriber received; each
deployment's events against its operations; opdata and the hosts' REST API against each
deployment's last configuration; the daemon's samples for flatness. See ``load.py``.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from lxml import etree

from functional.lifecycle.support import Cluster, connect
from payloads import ESC_NS
from reliability.loadkit import (
    FLAVORS,
    TENANT,
    Run,
    canonical,
    dep_name,
    fds_not_returned,
    host_of,
    kind,
)


def durable_log(cluster: Cluster) -> list[tuple[int, bytes, str | None, str]]:
    """(eventTime ms, canonical escEvent, depname, kind) of every logged escEvent, by id."""
    path = cluster.root / "orchd" / "esc-orch.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        rows = db.execute("SELECT event_time, payload FROM event_log ORDER BY id").fetchall()
    out = []
    for millis, body in rows:
        element = etree.fromstring(bytes(body))
        found = (
            element
            if element.tag == f"{{{ESC_NS}}}escEvent"
            else element.find(f".//{{{ESC_NS}}}escEvent")
        )
        if found is None:
            continue
        dep, text, _ = kind(found)
        out.append((int(millis), canonical(found), dep, text))
    return out


def compare(name: str, got: list[tuple[int, bytes]], want: list[tuple[int, bytes]]) -> list[str]:
    if got == want:
        return []
    seen = [t for t, _ in got]
    dupes = len(seen) - len(set(seen))
    missing = len({t for t, _ in want} - set(seen))
    extra = len(set(seen) - {t for t, _ in want})
    first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    return [
        f"{name}: {len(got)} events received, {len(want)} logged: {dupes} duplicated, "
        f"{missing} missing, {extra} not in the log, first difference at #{first}"
    ]


def check_state(cluster: Cluster, run: Run, services: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    from functional.lifecycle.support import NS, opdata  # noqa: PLC0415

    with connect(cluster) as m:
        data = opdata(m)
    for dep in run.deps:
        name = dep_name(dep.index)
        found = data.xpath(
            f"//e:tenant[e:name='{TENANT}']/e:deployments[e:deployment_name='{name}']",
            namespaces=NS,
        )
        mine = {vm: where for vm, where in services.items() if vm.startswith(f"{name}_")}
        if not dep.deployed:
            if found:
                problems.append(f"{name}: undeployed but in opdata")
            if mine:
                problems.append(f"{name}: undeployed but VMs on hosts: {sorted(mine)}")
            continue
        if not found:
            problems.append(f"{name}: deployed but not in opdata")
            continue
        d = found[0]
        state = d.findtext("e:state_machine/e:state", namespaces=NS)
        vms = [
            m.findtext("e:state", namespaces=NS)
            for m in d.iterfind("e:state_machine/e:vm_state_machines/e:vm_state_machine", NS)
        ]
        if state != "SERVICE_ACTIVE_STATE" or vms != ["VM_ALIVE_STATE"]:
            problems.append(f"{name}: opdata {state} {vms}")
        if len(mine) != 1:
            problems.append(f"{name}: VMs on hosts {sorted(mine)}, expected one")
            continue
        ((vm, where),) = mine.items()
        hosts = [h for h, _ in where]
        service = where[0][1]
        if hosts != [host_of(dep.index)] or str(service.get("power")) != "on":
            problems.append(f"{name}: {vm} on {hosts} power {service.get('power')}")
        if service.get("memory") != FLAVORS[dep.flavor]:
            problems.append(f"{name}: memory {service.get('memory')}, flavor {dep.flavor}")
    mine_all = {dep_name(d.index) for d in run.deps}
    strays = sorted(vm for vm in services if vm.split("_", 1)[0] not in mine_all)
    if strays:
        problems.append(f"VMs of no deployment on the hosts: {strays}")
    host = next(iter(cluster.hosts.values()))
    dirs = [host.gluster_dir] + [h.local_dir for h in cluster.hosts.values()]
    disks = {p.stem for d in dirs if d.exists() for p in d.glob("load-*.qcow2")}
    orphans = sorted(disks - set(services))
    if orphans:
        problems.append(f"orphan disks {orphans}")
    return problems


def check_events(run: Run, log: list[tuple[int, bytes, str | None, str]]) -> list[str]:
    problems: list[str] = []
    pairs = [(t, c) for t, c, _, _ in log]
    first_live = run.live[0][0] if run.live else None
    live_from = next((i for i, (t, _) in enumerate(pairs) if t == first_live), len(pairs))
    problems += compare("live subscriber", run.live, pairs[live_from:])
    if live_from > 0 and any(dep is not None for _, _, dep, _ in log[:live_from]):
        problems.append("live subscriber: events of deployments logged before its first one")
    problems += compare("replay subscriber", run.replay, pairs)
    if not run.replay_complete:
        problems.append("replay subscriber: no replayComplete")
    for dep in run.deps:
        name = dep_name(dep.index)
        logged = [text for _, _, d, text in log if d == name]
        if logged != dep.expected:
            at = next(
                (i for i, (a, b) in enumerate(zip(logged, dep.expected, strict=False)) if a != b),
                min(len(logged), len(dep.expected)),
            )
            problems.append(
                f"{name}: {len(logged)} events logged, {len(dep.expected)} expected; from #{at}: "
                f"logged {logged[max(0, at - 2) : at + 3]}, "
                f"expected {dep.expected[max(0, at - 2) : at + 3]}"
            )
    return problems


def flatness(run: Run, *, rss_slack: float, fd_slack: float) -> tuple[dict[str, float], list[str]]:
    """Figures of the samples and what is not flat (see the module docstring)."""
    samples = [s for s in run.samples if s.t >= run.seconds / 4]
    figures: dict[str, float] = {}
    problems: list[str] = []
    if not run.samples:
        return figures, ["no samples"]
    figures["peak_rss_mb"] = max(s.rss_kb for s in run.samples) / 1024
    figures["peak_fds"] = max(s.fds for s in run.samples)
    figures["peak_threads"] = max(s.threads for s in run.samples)
    if len(samples) >= 6:
        third = len(samples) // 3
        head, tail = samples[:third], samples[-third:]
        rss_head, rss_tail = max(s.rss_kb for s in head), max(s.rss_kb for s in tail)
        fd_head, fd_tail = max(s.fds for s in head), max(s.fds for s in tail)
        figures["rss_first_third_max_mb"] = rss_head / 1024
        figures["rss_last_third_max_mb"] = rss_tail / 1024
        figures["rss_drift_pct"] = 100 * (rss_tail - rss_head) / rss_head
        figures["fds_first_third_max"] = fd_head
        figures["fds_last_third_max"] = fd_tail
        if rss_tail > rss_head * (1 + rss_slack):
            problems.append(
                f"RSS not flat: last third max {rss_tail / 1024:.1f} MB > first third max "
                f"{rss_head / 1024:.1f} MB + {rss_slack:.0%}"
            )
        if fd_tail > fd_head * (1 + fd_slack) + 4:
            problems.append(f"fds not flat: last third max {fd_tail} > first third max {fd_head}")
    else:
        problems.append(f"too few samples after the warm-up ({len(samples)}) to judge flatness")
    assert run.baseline is not None and run.after is not None
    figures["baseline_rss_mb"] = run.baseline.rss_kb / 1024
    figures["after_rss_mb"] = run.after.rss_kb / 1024
    figures["baseline_fds"] = run.baseline.fds
    figures["fds_after"] = run.after.fds
    figures["baseline_threads"] = run.baseline.threads
    figures["threads_after"] = run.after.threads
    figures["netconf_session_fds_after"] = run.fds_after.get("netconf session", 0)
    left = fds_not_returned(run.fds_baseline, run.fds_after)
    if left:
        problems.append(f"fds did not return after the sessions closed: {'; '.join(left)}")
    return figures, problems


def log_errors(text: str) -> list[str]:
    """The daemon's ERROR/CRITICAL lines and tracebacks: under load there must be none."""
    bad = [
        line
        for line in text.splitlines()
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
    ]
    return [f"daemon log: {len(bad)} error line(s), first: {bad[0][:300]}"] if bad else []
