"""Hypervisor (VIM) connectors: the contract, our types, error classes and discovery.

The orchestrator imports only from here: :class:`Connector` and the value types; concrete
connectors are found by type through :func:`create_connector` (entry point group
``esc_orch.vim_connectors``).
"""

from esc_orch.vim.errors import (
    CapabilityNotSupported,
    PermanentVimError,
    TemporaryVimError,
    VimAuthError,
    VimCapacityError,
    VimConflict,
    VimDiskInUse,
    VimError,
    VimNotFound,
)
from esc_orch.vim.protocol import Connector, ProgressCallback, require
from esc_orch.vim.registry import (
    ENTRY_POINT_GROUP,
    UnknownConnectorType,
    connector_class,
    create_connector,
    known_types,
)
from esc_orch.vim.types import (
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
from esc_orch.vim.watch import diff_states, poll_changes

__all__ = [
    "ENTRY_POINT_GROUP",
    "Capability",
    "CapabilityNotSupported",
    "Connector",
    "ConnectorConfig",
    "Credentials",
    "Day0File",
    "DiskCopyProgress",
    "HostInfo",
    "NicSpec",
    "NicState",
    "NicType",
    "PermanentVimError",
    "PowerState",
    "ProgressCallback",
    "SerialPortSpec",
    "SerialType",
    "Storage",
    "TemporaryVimError",
    "UnknownConnectorType",
    "VimAuthError",
    "VimCapacityError",
    "VimConflict",
    "VimDiskInUse",
    "VimError",
    "VimNotFound",
    "VmChange",
    "VmChangeKind",
    "VmSpec",
    "VmState",
    "connector_class",
    "create_connector",
    "diff_states",
    "known_types",
    "poll_changes",
    "require",
]
