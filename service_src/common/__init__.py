"""What both services do the same way: the JWKS cache, the service token, the bounded body read, the logging.

Copied into both images; imports nothing of either service (an import-linter contract says so).
"""
