"""KPI collectors behind :class:`~esc_orch.monitor.collectors.protocol.Collector`.

Built-in: ``ICMPPing`` (:mod:`.icmp`) and the script collectors of metric definitions
(:mod:`.script`); more arrive by the ``esc_orch.collectors`` entry-point group
(:mod:`.registry`). The VIM's own view of a VM is :mod:`.vimview`.
"""
