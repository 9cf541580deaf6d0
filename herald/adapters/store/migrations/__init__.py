"""Alembic's environment for Herald's store: `herald db upgrade` runs it (herald/adapters/store/migrate.py).

Each revision under versions/ is frozen once released: a later change to the tables is a new revision, and
schema.py / answers.py always describe the head.
"""
