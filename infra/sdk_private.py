"""The one place the project touches names the SDKs it builds on do not publish.

Each name here says why no public route does the job. tests/infra/test_sdk_private.py imports every name in
``PRIVATE_NAMES`` from the installed packages and fails naming the one an upgrade removed or renamed (the
upgrade canary); it also reads the whole tree, tests included, and fails on any use of an unexported name of
Pulumi, pulumi-policy, uvicorn or the MCP SDK outside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, provider_pb2, provider_pb2_grpc, resource_pb2


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

# The wire format's other conventions (pulumi.runtime.rpc publishes none of its names). UNKNOWN is the string that
# stands for a value only a deployment knows, on the wire and in a dynamic provider's props during a preview (the
# SDK's public pulumi.UNKNOWN is another thing: the Output-side marker). A dynamic provider receives secret props
# still wrapped when the engine accepts secrets; unwrap_secret takes the value out. serialize_properties and
# deserialize_properties turn python values into the wire's Struct and back, as the engine's peers do.
UNKNOWN: str = rpc.UNKNOWN
unwrap_secret = rpc.unwrap_rpc_secret
serialize_properties = rpc.serialize_properties
deserialize_properties = rpc.deserialize_properties
PRIVATE_NAMES += tuple(("pulumi.runtime.rpc", name) for name in (
    "UNKNOWN", "unwrap_rpc_secret", "serialize_properties", "deserialize_properties"))


class EngineMonitor(MockMonitor):
    """The resource monitor behind ``pulumi.runtime.set_mocks(monitor=...)``: the SDK publishes the parameter but
    not the class, nor the ``resource_pb2`` messages a monitor answers with. The recording engine
    (infra/recording.py) needs a monitor: it reads each registration on the wire, where secrecy is exactly what
    the program sent, and answers a create itself (outputs are the inputs) without the mocks' decode and
    re-encode of every value. This class gives it the monitor's internals it uses under names of its own."""

    def urn_of(self, parent: str, type_: str, name: str) -> str:
        """The URN the engine gives a resource of that type and name under that parent."""
        return self.make_urn(parent, type_, name)

    def remember(self, urn: str, id_: str | None, outputs: dict[str, Any]) -> None:
        """Keep a resource where the SDK's ``getResource`` invoke looks when it resolves a resource reference."""
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, id_, outputs)

    @staticmethod
    def registered(urn: str, id_: str | None = None, outputs: Any = None) -> Any:
        """The answer to a RegisterResource request."""
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=outputs)


PRIVATE_NAMES += (
    ("pulumi.runtime.mocks", "MockMonitor"), ("pulumi.runtime.mocks", "MockMonitor.make_urn"),
    ("pulumi.runtime.mocks", "MockMonitor.ResourceRegistration"), ("pulumi.runtime.mocks", "MockMonitor.ReadResource"),
    ("pulumi.runtime.mocks", "MockMonitor.RegisterResourceOutputs"),
    ("pulumi.runtime.proto", "resource_pb2.RegisterResourceResponse"))

# The engine's gRPC protocol as the SDK compiled it (pulumi.runtime.proto says: "meant for internal use only"). The
# tests speak to a provider host and to the policy analyzer as the engine does (tests/support/provider_host.py,
# tests/policy/test_pack.py); no public client of either exists.
ENGINE_PROTOCOL = (analyzer_pb2, analyzer_pb2_grpc, provider_pb2, provider_pb2_grpc)
PRIVATE_NAMES += tuple(("pulumi.runtime.proto", module.__name__.rsplit(".", 1)[1]) for module in ENGINE_PROTOCOL)


def serialize_provider(provider: Any) -> str:
    """A dynamic provider pickled as ``pulumi.dynamic.Resource`` sends it to the provider host (the ``__provider``
    property); the SDK keeps the function in its private ``pulumi.dynamic.dynamic`` module. The tests send it to a
    real host as the engine does (tests/support/provider_host.py)."""
    from pulumi.dynamic.dynamic import serialize_provider as serialize

    return serialize(provider)


PRIVATE_NAMES += (("pulumi.dynamic.dynamic", "serialize_provider"),)


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
