"""The order events Saleor delivers, in exactly the shape of components/saleor/graphql's subscription.

subscription { event { __typename ... on OrderFullyPaid { order { ...ProvisioningOrder } } } }
The delivered body is the ``event`` object: {"__typename": "OrderFullyPaid", "order": {...}}.
"""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class OrderEvent(StrEnum):
    """Inbox event names; the value is Saleor's async event type."""

    ORDER_FULLY_PAID = "ORDER_FULLY_PAID"
    ORDER_CREATED = "ORDER_CREATED"
    ORDER_CANCELLED = "ORDER_CANCELLED"

    @property
    def header(self) -> str:
        """The Saleor-Event header value (lower-case)."""
        return self.value.lower()

    @property
    def path(self) -> str:
        """The webhook path segment: order-fully-paid."""
        return self.value.lower().replace("_", "-")

    @property
    def typename(self) -> str:
        """The subscription payload's __typename: OrderFullyPaid."""
        return "".join(part.capitalize() for part in self.value.split("_"))


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class MetadataItem(_Model):
    key: str
    value: str


class Variant(_Model):
    id: str
    sku: str | None = None
    metadata: list[MetadataItem] = Field(default_factory=list)


class OrderLine(_Model):
    id: str = Field(min_length=1)
    quantity: int = Field(ge=1)
    productSku: str | None = None
    variant: Variant | None = None


class Channel(_Model):
    slug: str


class Order(_Model):
    id: str = Field(min_length=1, max_length=256)
    number: str
    userEmail: str | None = None
    channel: Channel | None = None
    lines: list[OrderLine] = Field(default_factory=list)


class EventPayload(_Model):
    typename: str = Field(alias="__typename")
    order: Order


class PayloadError(ValueError):
    """The body is not an order event we can use; the message names the field and the rule.

    ``status`` is 400 when the body is not JSON at all, 422 when it is JSON of the wrong shape.
    """

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def parse_payload(body: bytes, event: OrderEvent) -> EventPayload:
    """Decode and validate a delivery body for ``event``; PayloadError names what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not valid UTF-8 (byte {exc.start})", status=400) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", status=400
        ) from exc
    if not isinstance(data, dict):
        raise PayloadError(f"body must be a JSON object (the subscription's event), got {type(data).__name__}")
    if data.get("__typename") != event.typename:
        raise PayloadError(f"__typename must be {event.typename!r} for {event.header}, got {data.get('__typename')!r}")
    if not isinstance(data.get("order"), dict):
        raise PayloadError("order is missing or not an object (subscription must select event.order)")
    try:
        return EventPayload.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise PayloadError(f"{where}: {first['msg']}") from exc
