"""Alembic migrations of every store table (``versions/``), run by ``esc_orch.store.migrate``.

``env.py`` is Alembic's entry point; it uses the connection that ``migrate.py`` hands it, so
nothing here reads ``alembic.ini`` or the environment.
"""
