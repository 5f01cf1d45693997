"""lifecycle record: ``lifecycle_state`` keeps a DeploymentRecord instead of 0.1.0's memory.

Revision ID: 0002
Revises: 0001
Created: 2026-12-01

``lifecycle_state`` loses ``active`` (Boolean) and ``memory`` (Text: the DeploymentMemory JSON
of 0.1.0's ``store/journal.py``) and gains ``state`` (the deployment state, String(32)) and
``record`` (the ``model.record.DeploymentRecord`` as ``store/codec.py`` writes it). Each row's
record is built from its memory:

* one VM entry (``VmRecord``) per ``known`` identity, sorted by VM name, with ``applied`` =
  ``applied[name]`` (``None`` when absent), ``wanted_off`` = name in ``stopped``,
  ``unmonitored`` = name in ``unmonitored``, ``alive`` = name in ``alive``;
* ``ever_active`` = ``active``, ``run`` = ``unfinished``, ``owed_service_action`` kept;
* ``state`` = SERVICE_ACTIVE_STATE when ``active``, else SERVICE_INERT_STATE.

What 0.1.0 did not keep takes the record's default: each VM's ``state`` is VM_UNDEF_STATE,
``seen_on``/``observed``/``last_failure`` are ``None``, the record's ``step`` and
``last_failure`` are ``None``. The daemon re-observes every deployment when it starts (the
resume run), which sets those again. Names in ``stopped``/``unmonitored``/``alive``/``applied``
that are not a ``known`` identity have no VM entry to carry them and are dropped (0.1.0 only
wrote ``applied`` for known VMs, and removed a retired VM from every set). Each interface of
an applied spec gets ``port_id: null`` (a NicSpec field since 0.1.0; ``None`` = the VIM
chooses, which is what 0.1.0 did).

``lifecycle_journal`` keeps its columns; its ``status`` gains ``replanned``. 0.1.0 wrote a
re-planned step as ``done`` with a detail ``replan: ...``: those rows become ``replanned``.

Downgrade is implemented (record -> memory, ``replanned`` -> ``done`` with a ``replan:``
detail); it loses what 0.1.0 cannot hold (VM states, observations, failures, the step in
flight, port ids of applied interfaces).

The JSON shapes of both forms are written out here, on purpose: this revision must keep
working when the models or the codec change later. ``tests/unit/store/test_migrations.py``
proves today's ``codec.record_from_json`` reads what it writes.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ACTIVE = "SERVICE_ACTIVE_STATE"
INERT = "SERVICE_INERT_STATE"
VM_UNDEF = "VM_UNDEF_STATE"

_state_0002 = sa.table(
    "lifecycle_state",
    sa.column("tenant", sa.String),
    sa.column("deployment", sa.String),
    sa.column("depid", sa.String),
    sa.column("state", sa.String),
    sa.column("record", sa.Text),
)
_state_0001 = sa.table(
    "lifecycle_state",
    sa.column("tenant", sa.String),
    sa.column("deployment", sa.String),
    sa.column("depid", sa.String),
    sa.column("active", sa.Boolean),
    sa.column("memory", sa.Text),
)
_journal = sa.table(
    "lifecycle_journal",
    sa.column("status", sa.String),
    sa.column("detail", sa.Text),
)


def _vm_name(identity: dict[str, Any]) -> str:
    """``<deployment>_<group>_<index>_<uuid>`` (model.lifecycle.vm_name)."""
    return f"{identity['deployment']}_{identity['group']}_{identity['index']}_{identity['uuid']}"


def _applied_0002(applied: dict[str, Any] | None) -> dict[str, Any] | None:
    if applied is None:
        return None
    spec = dict(applied["spec"])
    spec["interfaces"] = [{"port_id": None, **nic} for nic in spec.get("interfaces", [])]
    return {**applied, "spec": spec}


def record_of_memory(
    *, tenant: str, deployment: str, depid: str, active: bool, memory: dict[str, Any]
) -> dict[str, Any]:
    """The DeploymentRecord JSON object of one 0.1.0 ``lifecycle_state`` row."""
    applied: dict[str, Any] = memory.get("applied") or {}
    stopped = set(memory.get("stopped") or ())
    unmonitored = set(memory.get("unmonitored") or ())
    alive = set(memory.get("alive") or ())
    vms: list[dict[str, Any]] = []
    for identity in memory.get("known") or ():
        name = _vm_name(identity)
        vms.append(
            {
                "identity": {
                    k: identity[k] for k in ("deployment", "group", "index", "uuid", "vmid")
                },
                "state": VM_UNDEF,
                "applied": _applied_0002(applied.get(name)),
                "seen_on": None,
                "observed": None,
                "alive": name in alive,
                "wanted_off": name in stopped,
                "unmonitored": name in unmonitored,
                "last_failure": None,
            }
        )
    vms.sort(key=lambda vm: _vm_name(vm["identity"]))
    return {
        "tenant": tenant,
        "name": deployment,
        "depid": depid,
        "state": ACTIVE if active else INERT,
        "vms": vms,
        "ever_active": bool(active),
        "run": memory.get("unfinished"),
        "step": None,
        "last_failure": None,
        "owed_service_action": memory.get("owed_service_action"),
    }


def memory_of_record(record: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """``(active, memory JSON object)`` of one DeploymentRecord (the downgrade)."""
    vms: list[dict[str, Any]] = record.get("vms") or []
    applied = {}
    for vm in vms:
        if vm.get("applied") is not None:
            spec = dict(vm["applied"]["spec"])
            spec["interfaces"] = [
                {k: v for k, v in nic.items() if k != "port_id"}
                for nic in spec.get("interfaces", [])
            ]
            applied[_vm_name(vm["identity"])] = {**vm["applied"], "spec": spec}

    def names(flag: str) -> list[str]:
        return sorted(_vm_name(vm["identity"]) for vm in vms if vm.get(flag))

    memory = {
        "known": [vm["identity"] for vm in vms],
        "applied": applied,
        "stopped": names("wanted_off"),
        "unmonitored": names("unmonitored"),
        "alive": names("alive"),
        "unfinished": record.get("run"),
        "owed_service_action": record.get("owed_service_action"),
    }
    return bool(record.get("ever_active")), memory


def upgrade() -> None:
    with op.batch_alter_table("lifecycle_state") as batch:
        batch.add_column(sa.Column("state", sa.String(32), nullable=True))
        batch.add_column(sa.Column("record", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_state_0001)).all()
    for row in rows:
        record = record_of_memory(
            tenant=row.tenant,
            deployment=row.deployment,
            depid=row.depid,
            active=bool(row.active),
            memory=json.loads(row.memory),
        )
        bind.execute(
            sa.update(_state_0002)
            .where(_state_0002.c.tenant == row.tenant, _state_0002.c.deployment == row.deployment)
            .values(state=record["state"], record=json.dumps(record, sort_keys=True))
        )
    with op.batch_alter_table("lifecycle_state") as batch:
        batch.alter_column("state", existing_type=sa.String(32), nullable=False)
        batch.alter_column("record", existing_type=sa.Text(), nullable=False)
        batch.drop_column("memory")
        batch.drop_column("active")
    bind.execute(
        sa.update(_journal)
        .where(_journal.c.status == "done", _journal.c.detail.like("replan:%"))
        .values(status="replanned")
    )


def downgrade() -> None:
    with op.batch_alter_table("lifecycle_state") as batch:
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("memory", sa.Text(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(_state_0002)).all()
    for row in rows:
        active, memory = memory_of_record(json.loads(row.record))
        bind.execute(
            sa.update(_state_0001)
            .where(_state_0001.c.tenant == row.tenant, _state_0001.c.deployment == row.deployment)
            .values(active=active, memory=json.dumps(memory, sort_keys=True))
        )
    with op.batch_alter_table("lifecycle_state") as batch:
        batch.alter_column("active", existing_type=sa.Boolean(), nullable=False)
        batch.alter_column("memory", existing_type=sa.Text(), nullable=False)
        batch.drop_column("record")
        batch.drop_column("state")
    bind.execute(
        sa.update(_journal)
        .where(_journal.c.status == "replanned")
        .values(
            status="done",
            detail=sa.case(
                (_journal.c.detail.like("replan:%"), _journal.c.detail),
                else_=sa.literal("replan: ") + sa.func.coalesce(_journal.c.detail, "re-planned"),
            ),
        )
    )
