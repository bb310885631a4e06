"""Alembic environment: always run by ``schema.py`` on a connection it already holds (inside its transaction and its
advisory lock), never with a URL of its own."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the provisioner's migrations with `cmp-provisioner migrate`")
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
