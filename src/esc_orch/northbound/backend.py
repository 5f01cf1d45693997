"""The datastore port, as the NETCONF layer names it: defined in :mod:`esc_orch.model.backend`.

The protocol lives in the model layer because the store implements it and may import only the
model; this module keeps the northbound's import path.
"""

from esc_orch.model.backend import (
    ConfigBackend,
    Datastore,
    DefaultOperation,
    ErrorOption,
    GroupCommitBackend,
    PublishingBackend,
    RunningSnapshotBackend,
    TestOption,
)

__all__ = [
    "ConfigBackend",
    "Datastore",
    "DefaultOperation",
    "ErrorOption",
    "GroupCommitBackend",
    "PublishingBackend",
    "RunningSnapshotBackend",
    "TestOption",
]
