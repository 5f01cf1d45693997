"""What esc_nc_cli sends, built without a connection: filters, edit payloads, ESC RPCs.

Pure functions from command arguments to XML, so every command's wire form is unit-tested
without a server, and the network part of the CLI stays a thin loop around ncclient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from esc_orch.model.errors import NC_BASE_NS
from esc_orch.model.schema import EO_NS, ESC_NS
from esc_orch.model.xmlsafe import parse_xml

_SEGMENT = re.compile(r"^(?P<name>[A-Za-z_][\w.\-]*)(?P<preds>(\[[^\]]*\])*)$")
_PREDICATE = re.compile(r"""\[\s*([A-Za-z_][\w.\-]*)\s*=\s*(?:'([^']*)'|"([^"]*)")\s*\]""")


class PayloadError(ValueError):
    """A command argument cannot be turned into a request."""


def _esc(name: str) -> str:
    return f"{{{ESC_NS}}}{name}"


def _nc(name: str) -> str:
    return f"{{{NC_BASE_NS}}}{name}"


@dataclass(frozen=True, slots=True)
class Filter:
    """An ncclient filter spec: ``("subtree", element)`` or ``("xpath", select)``."""

    kind: str
    criteria: etree._Element | str

    def as_ncclient(self) -> tuple[str, etree._Element | str]:
        return self.kind, self.criteria


def path_filter(path: str | None) -> Filter | None:
    """``esc_datamodel/opdata`` → subtree filter in the esc namespace; ``/...`` → XPath.

    Key predicates (``tenant[name='T']``) become content-match nodes.
    """
    if path is None or not path.strip():
        return None
    path = path.strip()
    if path.startswith("/"):
        return Filter(kind="xpath", criteria=path)
    root: etree._Element | None = None
    parent: etree._Element | None = None
    for segment in path.strip("/").split("/"):
        match = _SEGMENT.match(segment)
        if match is None:
            raise PayloadError(f"invalid path segment {segment!r} in {path!r}")
        if parent is None:
            el = etree.Element(_esc(match["name"]), nsmap={None: ESC_NS})  # type: ignore[dict-item]
            root = el
        else:
            el = etree.SubElement(parent, _esc(match["name"]))
        preds = match["preds"]
        consumed = "".join(p.group(0) for p in _PREDICATE.finditer(preds))
        if consumed.replace(" ", "") != preds.replace(" ", ""):
            raise PayloadError(f"unsupported predicate in {segment!r} (use [key='value'])")
        for pred in _PREDICATE.finditer(preds):
            value = pred.group(2) if pred.group(2) is not None else pred.group(3)
            etree.SubElement(el, _esc(pred.group(1))).text = value
        parent = el
    assert root is not None
    return Filter(kind="subtree", criteria=root)


def config_from_file(data: bytes) -> etree._Element:
    """The ``<config>`` element for an edit-config file (``<config>`` or a bare data tree)."""
    root = parse_xml(data)
    if root.tag in (_nc("config"), "config"):
        if root.tag == "config":
            config = etree.Element(_nc("config"), nsmap={None: NC_BASE_NS})  # type: ignore[dict-item]
            config.extend(list(root))
            return config
        return root
    config = etree.Element(_nc("config"), nsmap={"nc": NC_BASE_NS})
    config.append(root)
    return config


def _config_with(datamodel: etree._Element) -> etree._Element:
    config = etree.Element(_nc("config"), nsmap={"nc": NC_BASE_NS})
    config.append(datamodel)
    return config


def _datamodel() -> etree._Element:
    return etree.Element(_esc("esc_datamodel"), nsmap={None: ESC_NS, "nc": NC_BASE_NS})  # type: ignore[dict-item]


def tenant_config(name: str, *, operation: str) -> etree._Element:
    """``<config>`` creating or deleting one tenant."""
    dm = _datamodel()
    tenant = etree.SubElement(etree.SubElement(dm, _esc("tenants")), _esc("tenant"))
    tenant.set(_nc("operation"), operation)
    etree.SubElement(tenant, _esc("name")).text = name
    return _config_with(dm)


def delete_deployment_config(tenant: str, deployment: str) -> etree._Element:
    """``<config>`` deleting one deployment of a tenant."""
    dm = _datamodel()
    ten = etree.SubElement(etree.SubElement(dm, _esc("tenants")), _esc("tenant"))
    etree.SubElement(ten, _esc("name")).text = tenant
    dep = etree.SubElement(etree.SubElement(ten, _esc("deployments")), _esc("deployment"))
    dep.set(_nc("operation"), "delete")
    etree.SubElement(dep, _esc("name")).text = deployment
    return _config_with(dm)


def _rpc(name: str, **leaves: str) -> etree._Element:
    el = etree.Element(_esc(name), nsmap={None: ESC_NS})  # type: ignore[dict-item]
    for leaf, value in leaves.items():
        etree.SubElement(el, _esc(leaf)).text = value
    return el


def service_action(action: str, tenant: str, deployment: str) -> etree._Element:
    return _rpc(
        "serviceAction",
        actionType=action,
        tenantName=tenant,
        depName=deployment,
        serviceName="-",
        serviceVersion="-",
    )


def vm_action(action: str, vm_name: str, *, force: bool = False) -> etree._Element:
    return _rpc("vmAction", actionType=action, vmName=vm_name, force=str(force).lower())


def recovery_vm_action(action: str, vm_name: str) -> etree._Element:
    return _rpc("recoveryVmAction", actionType=action, vmName=vm_name)


def eo_rpc(name: str, **leaves: str) -> etree._Element:
    """An RPC of our own module (``esc-orch``, namespace ``EO_NS``)."""
    el = etree.Element(f"{{{EO_NS}}}{name}", nsmap={None: EO_NS})  # type: ignore[dict-item]
    for leaf, value in leaves.items():
        etree.SubElement(el, f"{{{EO_NS}}}{leaf}").text = value
    return el


def confirm_host_down(vim_id: str) -> etree._Element:
    return eo_rpc("confirm-host-down", vim_id=vim_id)


def recheck_vim_connector(vim_id: str) -> etree._Element:
    return eo_rpc("recheck-vim-connector", vim_id=vim_id)


def pretty(element: etree._Element) -> str:
    """Indented XML text of ``element`` (a copy is re-indented; the original is untouched)."""
    copy = etree.fromstring(etree.tostring(element))
    etree.indent(copy, space="  ")
    return etree.tostring(copy, encoding="unicode")
