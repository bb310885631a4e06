"""The GraphQL documents the Saleor provider sends, read from the .graphql files beside this module.

Operations live in graphql/<name>.graphql and shared fragments in graphql/fragments/ (one fragment per file);
`document(name)` returns an operation with exactly the fragments it spreads, so every composed document
validates on its own (graphql-core rejects unused fragments).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

GRAPHQL_DIR = Path(__file__).parent / "graphql"
FRAGMENTS_DIR = GRAPHQL_DIR / "fragments"

_SPREAD = re.compile(r"\.\.\.\s*(?!on\b)([A-Za-z_][A-Za-z0-9_]*)")
_FRAGMENT_DEF = re.compile(r"\bfragment\s+([A-Za-z_][A-Za-z0-9_]*)\s+on\b")

# The order events the provisioner consumes: Saleor async event enum value -> the subscription's type name.
ORDER_EVENTS: dict[str, str] = {
    "ORDER_FULLY_PAID": "OrderFullyPaid",
    "ORDER_CREATED": "OrderCreated",
    "ORDER_CANCELLED": "OrderCancelled",
}
_SUBSCRIPTION_TEMPLATE_TYPE = "OrderFullyPaid"


def operation_names() -> list[str]:
    """Names of the operation documents (files directly under graphql/)."""
    return sorted(p.stem for p in GRAPHQL_DIR.glob("*.graphql"))


@cache
def _fragments() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted(FRAGMENTS_DIR.glob("*.graphql")):
        text = path.read_text()
        names = _FRAGMENT_DEF.findall(text)
        if len(names) != 1:
            raise ValueError(f"{path.name}: a fragment file holds exactly one fragment, found {names}")
        found[names[0]] = text
    return found


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


@cache
def document(name: str) -> str:
    """The operation `name` plus every fragment it spreads (transitively) and does not define itself."""
    path = GRAPHQL_DIR / f"{name}.graphql"
    if not path.is_file():
        raise KeyError(f"no GraphQL document {name!r} in {GRAPHQL_DIR} (have: {operation_names()})")
    parts = [_strip_comments(path.read_text())]
    defined = set(_FRAGMENT_DEF.findall(parts[0]))
    fragments = _fragments()
    pending = [n for n in _SPREAD.findall(parts[0]) if n not in defined]
    while pending:
        frag = pending.pop()
        if frag in defined:
            continue
        if frag not in fragments:
            raise KeyError(f"{name}.graphql spreads unknown fragment {frag!r}")
        defined.add(frag)
        text = _strip_comments(fragments[frag])
        parts.append(text)
        pending.extend(n for n in _SPREAD.findall(text) if n not in defined)
    return "\n".join(p.strip() for p in parts) + "\n"


def order_subscription(event: str) -> str:
    """The provisioner's subscription query for one order event (e.g. ORDER_FULLY_PAID)."""
    if event not in ORDER_EVENTS:
        raise ValueError(f"order event {event!r} is not one of {sorted(ORDER_EVENTS)}")
    template = document("order_subscription")
    return template.replace(f"... on {_SUBSCRIPTION_TEMPLATE_TYPE} ", f"... on {ORDER_EVENTS[event]} ", 1)
