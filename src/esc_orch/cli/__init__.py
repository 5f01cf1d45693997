"""esc_nc_cli: the ESC-compatible command-line NETCONF client."""
