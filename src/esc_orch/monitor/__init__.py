"""Watching deployed VMs: KPI collectors, the pure monitoring decision, rules, the loop.

Sits beside :mod:`esc_orch.reactor`, below :mod:`esc_orch.daemon`. It may import
:mod:`esc_orch.model`, :mod:`esc_orch.vim` and :mod:`esc_orch.reconcile` (the recovery
policy), never the store, the NETCONF layer, the reactor or the daemon (an import-linter
contract says so): what it learns leaves through the ports of :mod:`esc_orch.monitor.ports`.
"""
