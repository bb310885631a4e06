"""The Connector/MCP gateway: its config slice (config.py) and its component (component.py)."""
