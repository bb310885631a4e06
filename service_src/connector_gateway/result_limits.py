"""Bounded results: no tool answer larger than MAX_RESULT_BYTES reaches the caller.

Several MCP clients stop reading a tool result at about 25,000 tokens. JSON with ids, e-mail addresses and
punctuation tokenizes at roughly 3 bytes per token (prose nearer 4), so the default limit, 75,000 bytes of
compact JSON, stays under that for the JSON these tools return.

A result over the limit is refused (502 ``result_too_large``, naming the size and the limit), unless its tool
declares a ``Pager``: then whole items are dropped from the end of its list, never a byte of an item, and the
result says so in ``truncated`` with the cursor that reads on from the first dropped item. JSON is never cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service_src.connector_gateway.errors import GatewayError

TRUNCATED_KEY = "truncated"


@dataclass(frozen=True, slots=True)
class Pager:
    """How a tool's result can be cut safely: its list of items, and the arguments that read on from an item."""

    items_key: str
    # (the call's arguments, how many items were kept) -> the arguments of the call that reads on
    next_arguments: Callable[[Any, int], dict[str, Any]]


def encoded_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON the transports send."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def bound_result(tool: str, result: dict[str, Any], limit: int, *, pager: Pager | None, arguments: Any,
                 idempotent: bool) -> dict[str, Any]:
    """``result`` when it fits in ``limit`` bytes; else cut by its pager, or refused."""
    size = encoded_size(result)
    if size <= limit:
        return result
    items = result.get(pager.items_key) if pager is not None else None
    if isinstance(items, list) and items:
        cut = _cut(result, limit, pager, items, arguments)
        if cut is not None:
            return cut
    ran = "" if idempotent else " (the call itself ran: do not repeat it to read the result)"
    raise GatewayError(502, "result_too_large", f"the {tool} result is {size} bytes, over MAX_RESULT_BYTES={limit}"
                       f"{ran}; ask for less")


def _cut(result: dict[str, Any], limit: int, pager: Pager, items: list[Any], arguments: Any) -> dict[str, Any] | None:
    """The longest prefix of ``items`` that fits with its marker (binary search on the count), or None."""

    def page(kept: int) -> dict[str, Any]:
        marker = {"limit_bytes": limit, "returned": kept, "omitted": len(items) - kept,
                  "next_arguments": pager.next_arguments(arguments, kept)}
        return {**result, pager.items_key: items[:kept], TRUNCATED_KEY: marker}

    low, high = 0, len(items) - 1  # the whole list did not fit
    best = None
    while low <= high:
        mid = (low + high) // 2
        candidate = page(mid)
        if encoded_size(candidate) <= limit:
            best, low = candidate, mid + 1
        else:
            high = mid - 1
    if best is None or not best[pager.items_key]:
        return None  # not even one item fits: refusing says more than an empty page
    return best
