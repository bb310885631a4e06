"""The one place the program touches names the Pulumi SDK does not publish.

Each name here has a reason no public route exists; tests/infra/test_sdk_private.py imports every one
from the installed SDK and fails naming it when an upgrade removes or renames it (the upgrade canary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi.runtime import rpc


@dataclass(frozen=True)
class WireSignatures:
    """The signature keys of Pulumi's property wire format (a secret, a resource reference, an output value,
    an asset or archive is a map carrying ``key: <signature>``). They are part of the engine protocol, but
    the SDK exposes them only as private constants. The recording engine reads registrations on the wire,
    where secrecy is exactly what the program sent; deserialising first would resolve the values."""

    key: str
    secret: str
    resource: str
    output_value: str
    asset: str
    archive: str


WIRE_SIGNATURES = WireSignatures(
    key=rpc._special_sig_key,
    secret=rpc._special_secret_sig,
    resource=rpc._special_resource_sig,
    output_value=rpc._special_output_value_sig,
    asset=rpc._special_asset_sig,
    archive=rpc._special_archive_sig,
)

# The names above, for the canary test: (module, attribute).
PRIVATE_NAMES: tuple[tuple[str, str], ...] = tuple(
    ("pulumi.runtime.rpc", name) for name in (
        "_special_sig_key", "_special_secret_sig", "_special_resource_sig", "_special_output_value_sig",
        "_special_asset_sig", "_special_archive_sig"))


# pulumi_policy.proxy, a module pulumi_policy does not export: how CrossGuard hands a policy the props of a
# preview, where reading a value only `pulumi up` knows raises UnknownValueError and the analyzer reports the
# policy as not run on that object. The offline preview runs the policies through the same proxy, so it
# reports exactly what `pulumi preview --policy-pack` would. Imported when first needed (tools/preview).
POLICY_PROXY_MODULE = "pulumi_policy.proxy"
PRIVATE_NAMES += tuple((POLICY_PROXY_MODULE, name)
                       for name in ("UNKNOWN_STRING_VALUE", "UnknownValueError", "unknown_checking_proxy"))


def policy_proxy() -> Any:
    """The ``pulumi_policy.proxy`` module (UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy)."""
    import importlib

    return importlib.import_module(POLICY_PROXY_MODULE)
