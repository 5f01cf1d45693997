"""esc-orch: an open, NETCONF-driven VNF lifecycle orchestrator for CSP clusters.

The package is layered (see docs/architecture.md): ``model`` holds the schema, validation and
the pure edit engine; ``store`` is the only user of SQLAlchemy; ``northbound`` speaks NETCONF;
``vim`` drives hypervisors; ``daemon`` and ``cli`` are the programs people run.
"""

__version__ = "0.1.0"
