"""JSON for the lifecycle values the store keeps: planned actions, VM identities, applied specs.

The journal must read back, after a crash, exactly the action it wrote (the VM identity and
spec it carried), and the lifecycle state must restore the reactor's memory. Those values are
frozen dataclasses of the planner and connector layers; this module turns them into JSON from
their own field annotations, so a new field is stored without a schema of its own here, and a
round-trip test (``tests/unit/store/test_lifecycle_store.py``) proves every action survives.

Encoding rules: a dataclass is an object of its fields, an enum its value, ``bytes`` base64,
a tuple a list. An :data:`~esc_orch.model.actions.Action` (a union) is tagged with its
class name: ``{"type": "CreateVm", "fields": {...}}``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any

from esc_orch.model.actions import (
    AcceptSpec,
    Action,
    Blocked,
    CreateVm,
    DeleteVm,
    FenceHost,
    MigrateVm,
    PowerOff,
    PowerOn,
    Reboot,
    RecreateVm,
)
from esc_orch.model.failure import FAILURE_TYPES
from esc_orch.model.record import DeploymentRecord

ACTION_TYPES: Mapping[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        CreateVm,
        DeleteVm,
        PowerOn,
        PowerOff,
        Reboot,
        RecreateVm,
        MigrateVm,
        AcceptSpec,
        FenceHost,
        Blocked,
    )
}


#: Union members encoded with their class name (so a union of several decodes).
TAGGED: Mapping[str, type[Any]] = {cls.__name__: cls for cls in FAILURE_TYPES}


class CodecError(ValueError):
    """Stored JSON that does not decode to the expected type (a corrupt or foreign row)."""


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value`` (dataclasses, enums, bytes, tuples, primitives)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if type(value).__name__ in TAGGED:
            return {"type": type(value).__name__, "fields": fields}
        return fields
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple | list | frozenset | set):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


@cache
def _hints(cls: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(annotation: Any, raw: Any) -> Any:
    """The value of type ``annotation`` that :func:`encode` turned into ``raw``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if raw is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        if len(others) == 1:
            return decode(others[0], raw)
        if isinstance(raw, dict) and (cls := TAGGED.get(str(raw.get("type")))) in others:
            return decode(cls, raw)
        raise CodecError(f"ambiguous union {annotation}")
    if origin is tuple:
        item = typing.get_args(annotation)[0]
        return tuple(decode(item, v) for v in _list(raw))
    if origin is frozenset:
        item = typing.get_args(annotation)[0]
        return frozenset(decode(item, v) for v in _list(raw))
    if isinstance(annotation, type):
        if dataclasses.is_dataclass(annotation):
            if annotation.__name__ in TAGGED and isinstance(raw, dict) and "fields" in raw:
                raw = raw["fields"]
            if not isinstance(raw, dict):
                raise CodecError(f"{annotation.__name__}: expected an object")
            hints = _hints(annotation)
            kwargs = {
                f.name: decode(hints[f.name], raw[f.name])
                for f in dataclasses.fields(annotation)
                if f.name in raw
            }
            try:
                return annotation(**kwargs)
            except (TypeError, ValueError) as exc:
                raise CodecError(f"{annotation.__name__}: {exc}") from exc
        if issubclass(annotation, enum.Enum):
            return annotation(raw)
        if annotation is datetime.datetime:
            return datetime.datetime.fromisoformat(raw)
        if annotation is bytes:
            return base64.b64decode(raw)
        if annotation in (str, int, float, bool):
            if not isinstance(raw, annotation):
                raise CodecError(f"expected {annotation.__name__}, got {type(raw).__name__}")
            return raw
    raise CodecError(f"cannot decode {annotation!r}")


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise CodecError("expected a list")
    return raw


def action_to_json(action: Action) -> str:
    return json.dumps({"type": type(action).__name__, "fields": encode(action)}, sort_keys=True)


def action_from_json(text: str) -> Action:
    raw = json.loads(text)
    cls = ACTION_TYPES.get(str(raw.get("type"))) if isinstance(raw, dict) else None
    if cls is None:
        raise CodecError(f"unknown action {raw!r:.80}")
    action: Action = decode(cls, raw["fields"])
    return action


def record_to_json(record: DeploymentRecord) -> str:
    return json.dumps(encode(record), sort_keys=True)


def record_from_json(text: str) -> DeploymentRecord:
    record: DeploymentRecord = decode(DeploymentRecord, json.loads(text))
    return record
