"""The chaos run's last phase: both replicas down longer than Saleor retries, then catch-up.

Saleor is the fake of tests/components/saleor (its retry schedule, 10·2^n s for 5 retries, scaled by
``saleor_retry_scale``: every try happens, faster). The app and its three webhooks are made as `pulumi up` makes
them, aimed at replica a. With both replicas stopped: orders are paid, some of them cancelled afterwards, and
some paid while the ORDER_FULLY_PAID webhook is inactive (Saleor makes no delivery for those). Once Saleor has
given up on every delivery (each FAILED after its sixth try), the replicas start again and catch up. Every paid
order must then have exactly one instance, every cancelled one exactly one cancel and no instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from components.saleor.documents import document
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.services.provisioner.helpers import line
from tests.support.wait import wait_until
from tests.tools.verify.helpers import deploy_app


@dataclass(frozen=True)
class OutagePlan:
    paid: int = 20  # orders paid while the replicas are down, cancelled ones included
    cancelled: int = 3  # of those, cancelled afterwards (still while down)
    muted: int = 2  # more orders paid while the ORDER_FULLY_PAID webhook is inactive
    saleor_retry_scale: float = 0.01  # Saleor's ~310 s retry schedule in ~3 s
    settle_timeout: float = 120.0


class SaleorOutage:
    def __init__(self, plan: OutagePlan, replica_url: str, say: Callable[[str], None]) -> None:
        self.plan = plan
        self.say = say
        self.shop = FakeSaleor(retry_scale=plan.saleor_retry_scale, login_seconds=0.0).start()
        urls = {event: f"{replica_url}/webhooks/{event.replace('_', '-')}"
                for event in ("order_fully_paid", "order_created", "order_cancelled")}
        self.app_id, self.hooks = deploy_app(self.shop, urls)

    def env(self, origins: str) -> dict[str, str]:
        """What the replicas need to catch up with this Saleor (the stack renders the same variables)."""
        return {"SALEOR_ALLOWED_ORIGINS": f"{origins},{self.shop.origin}", "SALEOR_API_URL": self.shop.api_url,
                "SALEOR_ORDERS_QUERY": document("orders_since"), "SALEOR_APP_TOKEN": self.shop.app_token(self.app_id),
                "CATCHUP_INTERVAL_SECONDS": "2"}

    def while_down(self) -> dict[str, list[str]]:
        """The orders of the outage, by what happened to them; returns once Saleor has given up on each."""
        events = self.shop.events
        paid = [events.create_order([line("ov_100", "pro")]) for _ in range(self.plan.paid)]
        for order in paid:
            events.pay_order(order)
        cancelled = paid[: self.plan.cancelled]
        for order in cancelled:
            events.cancel_order(order)
        events.wait(events.settled, timeout=self.plan.settle_timeout, what="Saleor to give up on the deliveries")
        self.shop.edit_webhook(self.hooks["ORDER_FULLY_PAID"], isActive=False)
        muted = [events.create_order([line("ov_100", "pro")]) for _ in range(self.plan.muted)]
        for order in muted:
            events.pay_order(order)
        self.shop.edit_webhook(self.hooks["ORDER_FULLY_PAID"], isActive=True)
        events.wait(events.settled, timeout=self.plan.settle_timeout, what="Saleor to give up on the deliveries")
        return {"provisioned": [*paid[self.plan.cancelled:], *muted], "cancelled": cancelled}

    def figures(self, orders: dict[str, list[str]], state: Callable[[], dict], timeout: float,
                started: float) -> dict:
        """Wait until the control plane has every outcome (or the timeout), then count."""
        def done() -> dict | None:
            now = state()
            return now if (all(now["instances"].get(o) for o in orders["provisioned"])
                           and all(now["cancels"].get(o) for o in orders["cancelled"])) else None

        with suppress(AssertionError):  # past the timeout, count what arrived: the misses are the result
            wait_until(done, timeout=timeout, what="every outcome at the control plane")
        now = state()
        failed = self.shop.events.failed()
        instances, cancels = now["instances"], now["cancels"]
        missed = (sum(1 for o in orders["provisioned"] if instances.get(o, 0) != 1)
                  + sum(1 for o in orders["cancelled"] if cancels.get(o, 0) != 1 or instances.get(o, 0) != 0))
        return {
            "orders_paid_while_down": self.plan.paid,
            "orders_cancelled_while_down": self.plan.cancelled,
            "orders_paid_while_webhook_inactive": self.plan.muted,
            "saleor_failed_deliveries": len(failed),
            "saleor_tries_per_failed_delivery": sorted({len(d["attempts"]) for d in failed}),
            "instances": sum(instances.get(o, 0) for o in (*orders["provisioned"], *orders["cancelled"])),
            "cancels": sum(cancels.get(o, 0) for o in orders["cancelled"]),
            "orders_missed": missed,
            "seconds_to_catch_up": round(time.monotonic() - started, 2),
        }

    def stop(self) -> None:
        self.shop.stop()
