"""Test support for the northbound: an in-memory ConfigBackend and server/client helpers."""
