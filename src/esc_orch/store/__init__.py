"""Persistence: the only package that imports SQLAlchemy (configuration datastore, later the
journal of intended operations and the event log)."""
