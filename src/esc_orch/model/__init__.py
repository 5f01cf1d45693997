"""The esc_datamodel: YANG schema access, validation, the RFC 6241 edit engine and typed models.

Nothing in this package performs I/O beyond reading the YANG files shipped with it.
"""
