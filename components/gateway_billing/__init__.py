"""The cmp-gateway billing configuration: its config slice (config.py) and its component (component.py)."""
