"""The esc-orchd daemon: configuration, users, wiring of the datastore and the NETCONF server."""
