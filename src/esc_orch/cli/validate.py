"""``esc-orch-validate FILE...``: check ESC payloads against the YANG modules, offline.

The files are read as one configuration, merged in the order given (as successive
edit-config merges would be), so a deployment may be checked together with the VIM connectors
and flavors it refers to in other files. Every problem is printed as ``error-path: message``
(the rpc-error the daemon would answer); exit status 0 when the whole is valid, 1 when it is
not, 2 when a file cannot be read or is not XML.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from esc_orch.model.edit import Operation, apply_edit, check_edit
from esc_orch.model.errors import RpcError
from esc_orch.model.schema import NC_NS
from esc_orch.model.semantics import check_config
from esc_orch.model.validate import check_types, validate_config
from esc_orch.model.xmlsafe import parse_xml
from esc_orch.vocabulary import installed_vocabulary


def _top_elements(path: Path) -> list[etree._Element]:
    """The data nodes of one file: its root, or the children of a ``<config>``/``<data>``."""
    root = parse_xml(path.read_bytes())
    qname = etree.QName(root)
    if qname.localname in ("config", "data") and qname.namespace in (NC_NS, None):
        return list(root.iterchildren(etree.Element))
    return [root]


def _show(errors: Sequence[RpcError], where: str) -> None:
    for error in errors:
        path = f"{error.path}: " if error.path else ""
        print(f"{where}: {path}{error.message}", file=sys.stderr)


def validate_files(paths: Sequence[Path]) -> int:
    """Validate ``paths`` together; the exit status (0 valid, 1 invalid, 2 unreadable)."""
    data = etree.Element(f"{{{NC_NS}}}data")
    failed = False
    for path in paths:
        try:
            tops = _top_elements(path)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            return 2
        except RpcError as exc:  # not well-formed, a DTD, entities, too big
            print(f"{path}: {exc.message}", file=sys.stderr)
            return 2
        config = etree.Element(f"{{{NC_NS}}}config")
        config.extend(tops)
        errors = check_edit(config, default_operation=Operation.MERGE)
        if not errors:
            errors = list(check_types(config))
        if errors:
            _show(errors, str(path))
            failed = True
            continue
        result = apply_edit(data, config, default_operation=Operation.MERGE)
        if result.errors:
            _show(result.errors, str(path))
            failed = True
    if failed:
        return 1
    # The checks edit-config makes: YANG (libyang), then what YANG cannot say (semantics.py).
    errors = validate_config(data) or check_config(data, vocabulary=installed_vocabulary())
    if errors:
        _show(errors, " + ".join(str(p) for p in paths))
        return 1
    print(f"valid: {', '.join(str(p) for p in paths)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="esc-orch-validate",
        description="Validate ESC payloads (esc_datamodel, esc_system_config, or a <config> of "
        "them) against yang/esc.yang; several files are checked together, merged in order.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    return validate_files(args.files)


if __name__ == "__main__":
    sys.exit(main())
