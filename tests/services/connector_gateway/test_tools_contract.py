"""``tools/list`` is a contract with every agent: each tool's name, description and input schema, as an MCP
client receives them, must equal the reviewed golden file. A change to what agents see shows up as its diff."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

from tests.services.connector_gateway.mcp_helpers import mcp_client

GOLDEN = Path(__file__).parent / "golden" / "tools_list.json"
REGENERATE = ("CMP_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -n 0 "
              "tests/services/connector_gateway/test_tools_contract.py")


def _render(tools) -> str:
    listed = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema}
              for t in sorted(tools, key=lambda t: t.name)]
    return json.dumps(listed, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


async def test_tools_list_matches_the_reviewed_golden_file(start_gateway):
    gw = start_gateway(policy_enforcement=False)  # every tool the gateway has, as an agent receives it
    async with mcp_client(gw) as client:
        seen = _render((await client.list_tools()).tools)
    if os.environ.get("CMP_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(seen)
    expected = GOLDEN.read_text() if GOLDEN.exists() else ""
    if seen != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), seen.splitlines(True),
                                            str(GOLDEN.name), "tools/list as served"))
        raise AssertionError(f"what agents see in tools/list changed. If that is intended, regenerate the golden file "
                             f"and review its diff in the commit:\n  {REGENERATE}\n\n{diff}")
