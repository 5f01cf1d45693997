"""The NETCONF northbound: RFC 6242 framing, sessions, the RPC registry and the SSH adapter."""
