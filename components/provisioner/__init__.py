"""The Provisioner: its config slice (config.py) and its component (component.py)."""
