"""Why a configured deployment cannot be turned into VMs, as typed errors with a remedy.

The configuration layer has validated the payload against the YANG module, but some facts only
meet at planning time (a static IP pool smaller than ``min_active``, a flavor deleted since, a
Gluster disk asked of a connector without a cluster). Each becomes a FAILURE event whose
message says what to change, so every error here carries the vm_group and a sentence for people.
"""

from __future__ import annotations


class DesiredStateError(ValueError):
    """One thing that cannot be satisfied; ``str(err)`` is the actionable reason."""

    def __init__(self, *, group: str, reason: str) -> None:
        super().__init__(f"vm_group {group}: {reason}")
        self.group = group
        self.reason = reason


class UnknownFlavor(DesiredStateError):
    def __init__(self, *, group: str, flavor: str) -> None:
        super().__init__(
            group=group, reason=f"flavor {flavor!r} is not configured: add it under flavors"
        )
        self.flavor = flavor


class UnknownConnector(DesiredStateError):
    def __init__(self, *, group: str, vim_id: str) -> None:
        super().__init__(
            group=group,
            reason=f"locator vim_id {vim_id!r} names no VIM connector: add it under "
            "esc_system_config/vim_connectors or fix the locator",
        )
        self.vim_id = vim_id


class NoDefaultConnector(DesiredStateError):
    def __init__(self, *, group: str) -> None:
        super().__init__(
            group=group,
            reason="the group has no locator and there is no default VIM connector: give it "
            "locator/vim_id, or mark one connector with the property default = true",
        )


class StorageUnavailable(DesiredStateError):
    def __init__(self, *, group: str, vim_id: str, storage: str) -> None:
        super().__init__(
            group=group,
            reason=f"disk_storage_name {storage!r} needs a cluster connector, but VIM connector "
            f"{vim_id!r} has no cluster_name property: add cluster_name to it or use local",
        )


class IpPoolTooSmall(DesiredStateError):
    def __init__(self, *, group: str, network: str, size: int, needed: int) -> None:
        super().__init__(
            group=group,
            reason=f"static_ip_address_pool for network {network!r} has {size} address(es) "
            f"but min_active needs {needed}: add addresses or lower min_active",
        )
        self.network = network
        self.size = size
        self.needed = needed


class InvalidSetting(DesiredStateError):
    """An extension property, pool range or day-0 variable with a value we cannot use."""


class UnsatisfiableDeployment(ValueError):
    """Every problem found in one deployment (planning reports them all at once)."""

    def __init__(self, *, deployment: str, problems: tuple[DesiredStateError, ...]) -> None:
        listed = "; ".join(str(p) for p in problems)
        super().__init__(f"deployment {deployment} cannot be deployed: {listed}")
        self.deployment = deployment
        self.problems = problems
