"""Test support shipped in the package, so third-party connectors can run our checks.

:mod:`esc_orch.testing.vim_contract` is the VIM connector conformance suite (as NAPALM ships
``napalm.base.test``); :mod:`esc_orch.testing.emulator` starts emulated CSP hosts as real
processes for functional tests. Importing these modules needs pytest.
"""
