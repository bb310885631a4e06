"""Saleor: the app, its webhooks, and their recent event deliveries (components/saleor/verify.py asks)."""

from __future__ import annotations

from datetime import UTC, datetime

from components.saleor.verify import SaleorVerifyError, evaluate, fetch_app
from tools.verify.inputs import SALEOR_PASSWORD_ENV, Target, known
from tools.verify.result import Check, Status, fail, skip

AREA = "saleor"


def check(target: Target, now: datetime | None = None) -> list[Check]:
    app_id = target.outputs.get("saleorAppId")
    if not known(app_id):
        return [skip(AREA, "saleor app", "the stack has no saleorAppId output (not deployed yet)")]
    password = target.env.get(SALEOR_PASSWORD_ENV)
    if not password:
        return [fail(AREA, "saleor app", f"cannot log in to Saleor: {SALEOR_PASSWORD_ENV} is not set "
                                         f"(the staff password `pulumi up` uses)")]
    email = target.config.saleor.staff_email
    try:
        app = fetch_app(target.saleor_url, email, password, app_id, timeout=max(target.timeout, 20.0))
    except SaleorVerifyError as exc:
        return [fail(AREA, "saleor app", str(exc))]
    since = (now or datetime.now(UTC)) - target.since
    return [Check(AREA, f.name, Status.OK if f.ok else Status.FAIL, f.detail)
            for f in evaluate(app, app_id, target.outputs.get("webhookUrls") or {}, since=since)]

