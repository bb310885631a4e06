"""Vault pieces: the one path table, secret seeds and least-privilege access."""
