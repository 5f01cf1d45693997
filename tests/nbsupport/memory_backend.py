"""An in-memory ``ConfigBackend`` for northbound tests: lxml ``<data>`` trees, naive merge.

It implements just enough RFC 6241 edit semantics (merge/replace/create/delete/remove, list
entries matched by their first child leaf) to exercise the NETCONF layer. The real
datastore replaces it in production (``esc_orch.daemon.wiring.build_backend``).
An element named ``invalid`` anywhere in a config makes validation fail, so tests can
provoke an application error without a schema.
"""

from __future__ import annotations

import threading
from copy import deepcopy

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS, ErrorTag, RpcError
from esc_orch.northbound.backend import (
    Datastore,
    DefaultOperation,
    ErrorOption,
    TestOption,
)

ESC_NS = "http://www.cisco.com/esc/esc"
_OP = f"{{{NC_BASE_NS}}}operation"


def _data() -> etree._Element:
    return etree.Element(f"{{{NC_BASE_NS}}}data", nsmap={None: NC_BASE_NS})  # type: ignore[dict-item]


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _key(el: etree._Element) -> tuple[str, str | None]:
    children = _elements(el)
    if children and not _elements(children[0]):
        return el.tag, f"{children[0].tag}={(children[0].text or '').strip()}"
    return el.tag, None


def _find(parent: etree._Element, el: etree._Element) -> etree._Element | None:
    key = _key(el)
    for child in _elements(parent):
        if child.tag != el.tag:
            continue
        if key[1] is None or _key(child) == key:
            return child
    return None


def _strip_ops(el: etree._Element) -> etree._Element:
    for node in el.iter(etree.Element):
        node.attrib.pop(_OP, None)
    return el


def _apply(parent: etree._Element, edit: etree._Element, default: str) -> None:
    op = edit.get(_OP, default)
    existing = _find(parent, edit)
    path = etree.QName(edit).localname
    if op in {"delete", "remove"}:
        if existing is None:
            if op == "delete":
                raise RpcError(tag=ErrorTag.DATA_MISSING, message=f"{path} does not exist")
            return
        parent.remove(existing)
        return
    if op == "create" and existing is not None:
        raise RpcError(tag=ErrorTag.DATA_EXISTS, message=f"{path} already exists")
    if op == "replace" or existing is None:
        if op == "none" and existing is None:
            raise RpcError(tag=ErrorTag.DATA_MISSING, message=f"{path} does not exist")
        new = _strip_ops(deepcopy(edit))
        if existing is None:
            parent.append(new)
        else:
            parent.replace(existing, new)
        return
    children = _elements(edit)
    if not children:
        existing.text = edit.text
        return
    for child in children:
        _apply(existing, child, "merge" if op == "create" else op)


class MemoryBackend:
    """Thread-safe enough for tests (the northbound serialises calls anyway)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.running = _data()
        self.candidate = _data()
        self.state = _data()
        self.dirty = False
        self.calls: list[str] = []

    def get_config(self, *, source: Datastore) -> etree._Element:
        self.calls.append(f"get_config:{source}")
        with self._lock:
            return deepcopy(self.candidate if source is Datastore.CANDIDATE else self.running)

    def get_state(self) -> etree._Element:
        self.calls.append("get_state")
        with self._lock:
            return deepcopy(self.state)

    def edit_config(
        self,
        *,
        target: Datastore,
        config: etree._Element,
        default_operation: DefaultOperation = DefaultOperation.MERGE,
        test_option: TestOption = TestOption.TEST_THEN_SET,
        error_option: ErrorOption = ErrorOption.STOP_ON_ERROR,
    ) -> None:
        self.calls.append(f"edit_config:{target}")
        self._check(config)
        with self._lock:
            tree = deepcopy(self.candidate if target is Datastore.CANDIDATE else self.running)
            if default_operation is DefaultOperation.REPLACE:
                tree = _data()
            default = (
                "merge"
                if default_operation is DefaultOperation.REPLACE
                else default_operation.value
            )
            for child in _elements(config):
                _apply(tree, child, default)
            if test_option is TestOption.TEST_ONLY:
                return
            if target is Datastore.CANDIDATE:
                self.candidate = tree
                self.dirty = True
            else:
                self.running = tree
                if not self.dirty:
                    self.candidate = deepcopy(tree)

    def validate(self, *, source: Datastore | etree._Element) -> None:
        self.calls.append("validate")
        if isinstance(source, Datastore):
            source = self.get_config(source=source)
        self._check(source)

    def commit(self) -> None:
        self.calls.append("commit")
        with self._lock:
            self.running = deepcopy(self.candidate)
            self.dirty = False

    def discard_changes(self) -> None:
        self.calls.append("discard_changes")
        with self._lock:
            self.candidate = deepcopy(self.running)
            self.dirty = False

    def candidate_is_dirty(self) -> bool:
        return self.dirty

    def copy_config(self, *, target: Datastore, source: Datastore | etree._Element) -> None:
        self.calls.append(f"copy_config:{target}")
        tree = self.get_config(source=source) if isinstance(source, Datastore) else source
        self._check(tree)
        new = _data()
        new.extend(_strip_ops(deepcopy(c)) for c in _elements(tree))
        with self._lock:
            if target is Datastore.CANDIDATE:
                self.candidate, self.dirty = new, True
            else:
                self.running = new
                if not self.dirty:
                    self.candidate = deepcopy(new)

    def delete_config(self, *, target: Datastore) -> None:
        raise RpcError(tag=ErrorTag.OPERATION_NOT_SUPPORTED, message="no startup datastore")

    @staticmethod
    def _check(tree: etree._Element) -> None:
        for node in tree.iter(etree.Element):
            if etree.QName(node).localname == "invalid":
                raise RpcError(
                    tag=ErrorTag.INVALID_VALUE,
                    message="this element is invalid",
                    path="/esc:esc_datamodel/esc:invalid",
                )
