"""Alembic's script directory for the inbox schema; ``service_src.provisioner.schema`` runs it."""
