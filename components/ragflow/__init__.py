"""Ragflow pinned to an architecture its image supports: config, component, and the registry preflight."""
