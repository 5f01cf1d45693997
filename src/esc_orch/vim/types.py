"""The connector vocabulary, re-exported for connector code: defined in :mod:`esc_orch.model.vim`.

The value types are shared with the planner, the reactor and the store, which may not import
the ``vim`` package (it does I/O); the one definition is therefore in the model layer.
"""

from esc_orch.model.vim import (
    Capability,
    ConnectorConfig,
    Credentials,
    Day0File,
    DiskCopyProgress,
    HostInfo,
    NicSpec,
    NicState,
    NicType,
    PowerState,
    SerialPortSpec,
    SerialType,
    Storage,
    VmChange,
    VmChangeKind,
    VmSpec,
    VmState,
)

__all__ = [
    "Capability",
    "ConnectorConfig",
    "Credentials",
    "Day0File",
    "DiskCopyProgress",
    "HostInfo",
    "NicSpec",
    "NicState",
    "NicType",
    "PowerState",
    "SerialPortSpec",
    "SerialType",
    "Storage",
    "VmChange",
    "VmChangeKind",
    "VmSpec",
    "VmState",
]
