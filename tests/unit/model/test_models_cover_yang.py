"""The pydantic models and the YANG module describe the same leaves, with the same defaults."""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel

from esc_orch.model.config import UNIT_MODELS
from esc_orch.model.schema import NodeKind, SchemaNode
from esc_orch.model.units import KINDS, _schema_at


def _model_of(annotation: Any) -> type[BaseModel] | None:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_of(arg)
            if found:
                return found
        return None
    if origin is tuple:
        return _model_of(get_args(annotation)[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _yang_paths(node: SchemaNode, prefix: str, skip: tuple[str, ...]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for child in node.children.values():
        if child.name in skip or not child.config:
            continue
        path = f"{prefix}/{child.name}"
        paths[path] = child.kind
        if child.kind in (NodeKind.CONTAINER, NodeKind.LIST):
            paths.update(_yang_paths(child, path, ()))
    return paths


def _model_paths(model: type[BaseModel], prefix: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}/{name}"
        annotation = field.annotation
        nested = _model_of(annotation)
        is_tuple = get_origin(annotation) is tuple
        if nested is not None:
            paths[path] = NodeKind.LIST if is_tuple else NodeKind.CONTAINER
            paths.update(_model_paths(nested, path))
        else:
            paths[path] = NodeKind.LEAF_LIST if is_tuple else NodeKind.LEAF
    return paths


@pytest.mark.parametrize("kind", sorted(UNIT_MODELS))
def test_model_and_module_have_the_same_nodes(kind: str) -> None:
    unit = KINDS[kind]
    yang = _yang_paths(_schema_at(unit.steps), "", unit.detached)
    model = _model_paths(UNIT_MODELS[kind], "")
    assert model == yang


def _defaults(node: SchemaNode, model: type[BaseModel]) -> list[tuple[str, Any, Any]]:
    mismatches = []
    for child in node.children.values():
        if child.name not in model.model_fields:
            continue
        field = model.model_fields[child.name]
        if child.kind is NodeKind.LEAF:
            yang_default = child.default
            model_default = None if field.is_required() else field.default
            if yang_default != model_default:
                mismatches.append((child.path, yang_default, model_default))
        elif child.kind in (NodeKind.CONTAINER, NodeKind.LIST):
            nested = _model_of(field.annotation)
            if nested is not None:
                mismatches += _defaults(child, nested)
    return mismatches


@pytest.mark.parametrize("kind", sorted(UNIT_MODELS))
def test_model_defaults_are_the_yang_defaults(kind: str) -> None:
    assert _defaults(_schema_at(KINDS[kind].steps), UNIT_MODELS[kind]) == []
