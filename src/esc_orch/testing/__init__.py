"""Test support shipped in the package, so third-party connectors can run our checks.

:mod:`esc_orch.testing.vim_contract` is the VIM connector conformance suite (as NAPALM ships
``napalm.base.test``); :mod:`esc_orch.testing.emulator` starts emulated CSP hosts as real
processes for functional tests. :mod:`esc_orch.testing.collector_contract` and
:mod:`esc_orch.testing.fake_collector` do the same for KPI collectors;
:mod:`esc_orch.testing.netns` skips (or, under CI as root, fails) what needs a private network
namespace; :mod:`esc_orch.testing.monitor_rig` runs the monitor and recovery against an
emulated host. Importing these modules needs pytest.
"""
