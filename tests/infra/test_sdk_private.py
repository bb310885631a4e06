"""The upgrade canary: every private SDK name the program still uses, imported from the installed SDK.

A failure here names the module and attribute an upgrade removed or renamed; infra/sdk_private.py says
why each is needed and is the only place to fix.
"""

import importlib
import re
from pathlib import Path

import pytest

from infra import sdk_private

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("module", "name"), sdk_private.PRIVATE_NAMES, ids=lambda v: v)
def test_private_name_still_exists(module, name):
    assert hasattr(importlib.import_module(module), name), (
        f"{module}.{name} is gone from the installed SDK: update infra/sdk_private.py")


def test_wire_signatures_mark_what_the_sdk_sends():
    """The signatures are the ones the SDK puts on the wire for a secret (checked through its public API)."""
    from pulumi.runtime import rpc

    wrapped = rpc.wrap_rpc_secret("x")
    assert wrapped[sdk_private.WIRE_SIGNATURES.key] == sdk_private.WIRE_SIGNATURES.secret


def test_no_other_module_uses_a_private_sdk_name():
    """Private names of pulumi, pulumi_kubernetes or mcp appear only in infra/sdk_private.py."""
    pattern = re.compile(r"\b(?:pulumi\w*|mcp\w*|rpc|settings|mocks|k8s_sdk)\._[a-z]\w*")
    offenders = []
    for folder in ("infra", "components", "stacks", "tools", "policy", "service_src"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "sdk_private.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if pattern.search(line) or re.search(r"from (pulumi|mcp)\S* import _", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
