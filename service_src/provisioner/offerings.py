"""Which CMP offering an order line buys.

By the variant's metadata ``cmp.offering_version_id`` / ``cmp.plan_id`` when both are set, else by a SKU of the
form ``<offering_version_id>:<plan_id>`` (the variant's SKU, or the line's productSku when the variant is gone).
A line that maps to nothing is not ours (a T-shirt in the same cart) and is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .payloads import OrderLine

OFFERING_KEY = "cmp.offering_version_id"
PLAN_KEY = "cmp.plan_id"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class Offering:
    offering_version_id: str
    plan_id: str


def _valid(offering_version_id: str | None, plan_id: str | None) -> Offering | None:
    if offering_version_id and plan_id and _ID.match(offering_version_id) and _ID.match(plan_id):
        return Offering(offering_version_id, plan_id)
    return None


def offering_from_sku(sku: str | None) -> Offering | None:
    if not sku or sku.count(":") != 1:
        return None
    offering_version_id, plan_id = sku.split(":")
    return _valid(offering_version_id.strip(), plan_id.strip())


def offering_for_line(line: OrderLine) -> Offering | None:
    if line.variant is not None:
        meta = {item.key: item.value for item in line.variant.metadata}
        found = _valid(meta.get(OFFERING_KEY, "").strip(), meta.get(PLAN_KEY, "").strip())
        if found:
            return found
        if line.variant.sku:
            return offering_from_sku(line.variant.sku)
    return offering_from_sku(line.productSku)
