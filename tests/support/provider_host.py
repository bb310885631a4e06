"""Drive a dynamic provider through Pulumi's real provider host over gRPC.

The host (``python -u -m pulumi.dynamic``) runs in a fresh process whose cwd is the project root, exactly as
the engine starts it, so a provider that cannot be unpickled there (a client on the instance, a module global,
a path that only exists in the test process) fails here as it would under ``pulumi up``.
"""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2

from infra.sdk_private import (
    deserialize_properties,
    provider_pb2,
    provider_pb2_grpc,
    serialize_properties,
    serialize_provider,
)
from tests.support import servers

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "__provider"


def _to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    return asyncio.run(serialize_properties(props, {}))


def _from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    return deserialize_properties(struct, keep_unknowns=True)


class ProviderHost:
    """One provider-host process; every call sends ``__provider`` with the pickled provider, as the engine does."""

    def __init__(self, provider: Any, *, project: str = "cmp-platform", env: dict[str, str] | None = None) -> None:
        self.serialized = self.serialize(provider)
        self.project = project
        child_env = {**os.environ, "PULUMI_PROJECT": project, **(env or {})}
        child_env.pop("PYTHONPATH", None)  # the host must import the project the way the engine's host does
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "pulumi.dynamic"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
        )
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            err = self.process.stderr.read().decode(errors="replace") if self.process.poll() is not None else ""
            raise RuntimeError(f"provider host did not print its port (got {line!r}): {err[-2000:]}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        servers.announce(self, f"Pulumi provider host (pid {self.process.pid}; stderr read at close)",
                         f"127.0.0.1:{line}", None)
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def serving(self, provider: Any) -> ProviderHost:
        """This same host process, sending `provider` as ``__provider``: the engine runs every dynamic resource of
        a program in one host, whatever its provider class. Close only the original."""
        view = copy.copy(self)
        view.serialized = self.serialize(provider)
        return view

    @staticmethod
    def serialize(provider: Any) -> str:
        return serialize_provider(provider)

    def _with_provider(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**props, PROVIDER_KEY: self.serialized}

    @staticmethod
    def _strip(props: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in props.items() if k != PROVIDER_KEY}

    def urn(self, name: str, type_: str = "pulumi-python:dynamic:Resource") -> str:
        return f"urn:pulumi:test::{self.project}::{type_}::{name}"

    # ---- the ResourceProvider protocol, with plain dicts ------------------------------------------------------
    def configure(self, config: dict[str, Any]) -> None:
        self.stub.Configure(provider_pb2.ConfigureRequest(args=_to_struct(config), acceptSecrets=False))

    def check(self, news: dict[str, Any], olds: dict[str, Any] | None = None, name: str = "r"):
        """Returns (inputs, failures) where failures is a list of (property, reason)."""
        response = self.stub.Check(
            provider_pb2.CheckRequest(
                urn=self.urn(name),
                olds=_to_struct(self._with_provider(olds or {})),
                news=_to_struct(self._with_provider(news)),
            )
        )
        return self._strip(_from_struct(response.inputs)), [(f.property, f.reason) for f in response.failures]

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any], name: str = "r") -> dict[str, Any]:
        response = self.stub.Diff(
            provider_pb2.DiffRequest(
                id=id_,
                urn=self.urn(name),
                olds=_to_struct(self._with_provider(olds)),
                news=_to_struct(self._with_provider(news)),
            )
        )
        changes = {
            provider_pb2.DiffResponse.DIFF_SOME: True,
            provider_pb2.DiffResponse.DIFF_NONE: False,
        }.get(response.changes)
        return {
            "changes": changes,
            "replaces": list(response.replaces),
            "delete_before_replace": response.deleteBeforeReplace,
        }

    def create(self, props: dict[str, Any], name: str = "r") -> tuple[str, dict[str, Any]]:
        response = self.stub.Create(
            provider_pb2.CreateRequest(urn=self.urn(name), properties=_to_struct(self._with_provider(props)))
        )
        return response.id, self._strip(_from_struct(response.properties))

    def read(self, id_: str, props: dict[str, Any], name: str = "r") -> tuple[str, dict[str, Any]]:
        """Returns (id, outputs); an empty id means the resource is gone (refresh drops it)."""
        response = self.stub.Read(
            provider_pb2.ReadRequest(id=id_, urn=self.urn(name), properties=_to_struct(self._with_provider(props)))
        )
        return response.id, self._strip(_from_struct(response.properties))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any], name: str = "r") -> dict[str, Any]:
        response = self.stub.Update(
            provider_pb2.UpdateRequest(
                id=id_,
                urn=self.urn(name),
                olds=_to_struct(self._with_provider(olds)),
                news=_to_struct(self._with_provider(news)),
            )
        )
        return self._strip(_from_struct(response.properties))

    def delete(self, id_: str, props: dict[str, Any], name: str = "r") -> None:
        self.stub.Delete(
            provider_pb2.DeleteRequest(id=id_, urn=self.urn(name), properties=_to_struct(self._with_provider(props)))
        )

    def stderr(self) -> str:
        """What the host printed (tracebacks, logs): read after close() to check nothing leaked."""
        return self._stderr

    def close(self) -> None:
        self.channel.close()
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        self._stderr = err.decode(errors="replace")
        self.process.stdout.close()

    def __enter__(self) -> ProviderHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
