"""An emulated CSP cluster: one real HTTP(S) server process per CSP host (``esc-csp-sim``).

It speaks the CSP ConfD REST dialect so the CSP connector is tested over the wire, with disks
as real sparse files, QEMU-style OFD locks, and faults as real process states (see
docs/csp-emulator.md).
"""
