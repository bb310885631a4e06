"""The provider plugin version a resource asks the engine for, as the provider's typed SDK would."""

from __future__ import annotations

from functools import cache
from importlib.metadata import version


@cache
def plugin_version(sdk_package: str) -> str:
    """The plugin the installed SDK ``sdk_package`` (e.g. ``pulumi_kubernetes``) asks for: its own version, since
    each SDK is generated per plugin release. A pre-release would be spelled differently in semver; the
    registration tests against the typed classes catch that."""
    return version(sdk_package)
