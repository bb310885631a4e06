"""YAML in and out with libyaml's C loader/dumper when present (the pure-Python ones are ~10x slower)."""

from __future__ import annotations

from typing import Any

import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (C or Python)


def dump(obj: Any) -> str:
    """Block style, keys in program order; ints stay ints, strings that look like numbers stay quoted."""
    return yaml.dump(obj, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
