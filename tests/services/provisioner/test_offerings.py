"""Which offering and plan a Saleor order line buys: variant metadata first, else the SKU."""

from __future__ import annotations

from service_src.provisioner.offerings import Offering, offering_for_line
from service_src.provisioner.payloads import OrderLine


def _line(**fields) -> OrderLine:
    return OrderLine.model_validate({"id": "l", "quantity": 1, **fields})


def test_offering_mapping():
    meta = {
        "id": "v",
        "sku": "other:sku",
        "metadata": [{"key": "cmp.offering_version_id", "value": "ov_1"}, {"key": "cmp.plan_id", "value": "pro"}],
    }
    assert offering_for_line(_line(variant=meta)) == Offering("ov_1", "pro")  # metadata wins over SKU
    assert offering_for_line(_line(variant={"id": "v", "sku": "ov_2:team", "metadata": []})) == Offering("ov_2", "team")
    half = {"id": "v", "sku": "ov_3:basic", "metadata": [{"key": "cmp.offering_version_id", "value": "ov_9"}]}
    assert offering_for_line(_line(variant=half)) == Offering("ov_3", "basic")  # half metadata: SKU
    assert offering_for_line(_line(productSku="ov_4:pro", variant=None)) == Offering("ov_4", "pro")
    for sku in ("TSHIRT", "a:b:c", ":pro", "ov_1:", "ov 1:pro", None):
        assert offering_for_line(_line(productSku=sku, variant=None)) is None, sku
