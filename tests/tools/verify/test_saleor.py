"""Verify's Saleor checks against the Saleor fake: the app, its webhooks, and failed or retrying deliveries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.components.saleor.fake_saleor import FakeSaleor
from tests.support.tiers import server_fixture
from tests.tools.verify.helpers import WEBHOOK_URLS, deploy_app, target
from tools.verify import saleor
from tools.verify.result import Status


@server_fixture(params=["3.20", "3.23"])
def fake(request, schema_dir):
    with FakeSaleor(version=request.param, login_seconds=0.0) as server:
        yield server


def run(fake, app_id, *, password=None, since=timedelta(hours=1), urls=WEBHOOK_URLS):
    t = target({"saleorAppId": app_id, "webhookUrls": urls}, saleor_url=fake.api_url, since=since,
               env={"SALEOR_STAFF_PASSWORD": password or fake.staff.password},
               config_changes={"saleor": load_saleor(fake)})
    return {c.name: c for c in saleor.check(t)}


def load_saleor(fake):
    from components.saleor.config import SaleorConfig

    return SaleorConfig(api_url=fake.api_url, staff_email=fake.staff.email)


def test_a_deployed_app_with_no_failed_delivery_is_all_ok(fake):
    app_id, hooks = deploy_app(fake)
    fake.record_delivery(hooks["ORDER_FULLY_PAID"], [(200, '{"status":"accepted"}')])  # deleted on success
    checks = run(fake, app_id)
    assert {n: c.status for n, c in checks.items()} == {
        "saleor app": Status.OK, "saleor webhook ORDER_FULLY_PAID": Status.OK,
        "saleor webhook ORDER_CREATED": Status.OK, "saleor webhook ORDER_CANCELLED": Status.OK,
        "saleor deliveries": Status.OK}
    assert "active with MANAGE_ORDERS" in checks["saleor app"].reason


def test_a_delivery_blocked_by_the_ip_filter_fails_naming_event_status_and_response(fake):
    app_id, hooks = deploy_app(fake)
    fake.record_delivery(hooks["ORDER_FULLY_PAID"], [(None, "Invalid IP address")] * 6)
    check = run(fake, app_id)["saleor deliveries ORDER_FULLY_PAID"]
    assert check.status is Status.FAIL
    assert check.reason.startswith("ORDER_FULLY_PAID delivery failed: no HTTP answer, response 'Invalid IP address' "
                                   "(1 FAILED, 0 retrying since ")


def test_a_retrying_delivery_fails_with_the_latest_attempts_status(fake):
    app_id, hooks = deploy_app(fake)
    fake.record_delivery(hooks["ORDER_CREATED"], [(503, "upstream unavailable"), (502, "<html>Bad gateway</html>")])
    check = run(fake, app_id)["saleor deliveries ORDER_CREATED"]
    assert check.status is Status.FAIL
    assert check.reason.startswith("ORDER_CREATED delivery retrying: HTTP 502, response '<html>Bad gateway</html>' "
                                   "(0 FAILED, 1 retrying since ")


def test_a_refused_signature_fails_at_once_and_long_responses_are_cut(fake):
    app_id, hooks = deploy_app(fake)
    body = '{"detail":"signature does not verify"}' + " pad" * 400
    delivery = fake.record_delivery(hooks["ORDER_CANCELLED"], [(401, body), (200, "never tried")])
    assert [d["status"] for d in fake.deliveries(hooks["ORDER_CANCELLED"])] == ["FAILED"]  # 4xx: no retry
    assert delivery is not None
    check = run(fake, app_id)["saleor deliveries ORDER_CANCELLED"]
    assert check.status is Status.FAIL
    assert check.reason.startswith("ORDER_CANCELLED delivery failed: HTTP 401, response "
                                   "'{\"detail\":\"signature does not verify\"} pad pad")
    assert len(check.reason) < 320  # the excerpt is cut at 160 characters


def test_a_failure_before_the_window_is_not_counted(fake):
    app_id, hooks = deploy_app(fake)
    fake.record_delivery(hooks["ORDER_FULLY_PAID"], [(500, "boom")] * 6,
                         created_at=datetime.now(UTC) - timedelta(hours=3))
    assert run(fake, app_id, since=timedelta(hours=1))["saleor deliveries"].status is Status.OK
    assert run(fake, app_id, since=timedelta(hours=4))["saleor deliveries ORDER_FULLY_PAID"].status is Status.FAIL


def test_an_inactive_webhook_and_a_wrong_target_fail(fake):
    app_id, hooks = deploy_app(fake)
    fake.edit_webhook(hooks["ORDER_CREATED"], isActive=False)
    fake.edit_webhook(hooks["ORDER_CANCELLED"], targetUrl="http://old-provisioner:8000/webhooks/order-cancelled")
    checks = run(fake, app_id)
    assert checks["saleor webhook ORDER_CREATED"].status is Status.FAIL
    assert "is not active" in checks["saleor webhook ORDER_CREATED"].reason
    assert checks["saleor webhook ORDER_CANCELLED"].reason.endswith(
        f"targets http://old-provisioner:8000/webhooks/order-cancelled, not {WEBHOOK_URLS['order_cancelled']}")
    assert checks["saleor webhook ORDER_FULLY_PAID"].status is Status.OK


def test_a_deleted_app_a_missing_permission_and_a_broader_one_fail(fake):
    app_id, _ = deploy_app(fake)
    fake.edit_app(app_id, permissions=[])
    assert run(fake, app_id)["saleor app"].reason.endswith("lacks permission MANAGE_ORDERS (has none)")
    fake.edit_app(app_id, permissions=["MANAGE_ORDERS", "MANAGE_APPS"])
    check = run(fake, app_id)["saleor app"]
    assert check.status is Status.FAIL and check.reason.endswith("holds MANAGE_APPS beyond MANAGE_ORDERS")
    fake.delete_app_out_of_band(app_id)
    check = run(fake, app_id)["saleor app"]
    assert check.status is Status.FAIL and "does not exist in Saleor" in check.reason


def test_a_refused_login_is_one_fail_line(fake):
    app_id, _ = deploy_app(fake)
    checks = run(fake, app_id, password="wrong")
    assert list(checks) == ["saleor app"]
    assert checks["saleor app"].status is Status.FAIL
    assert "tokenCreate failed: field 'email' code INVALID_CREDENTIALS" in checks["saleor app"].reason
    assert fake.counts()["login:INVALID_CREDENTIALS"] == 1  # a refused login is never retried


def test_many_failed_deliveries_are_counted_per_event(fake):
    app_id, hooks = deploy_app(fake)
    for _ in range(3):
        fake.record_delivery(hooks["ORDER_FULLY_PAID"], [(500, "down")] * 6)
    fake.record_delivery(hooks["ORDER_FULLY_PAID"], [(503, "down")])
    check = run(fake, app_id)["saleor deliveries ORDER_FULLY_PAID"]
    assert "(3 FAILED, 1 retrying since " in check.reason


def test_saleor_errors_are_retried_with_the_providers_rules(fake):
    app_id, _ = deploy_app(fake)
    fake.reset_counts()
    fake.fail_next("http_503", root="app")
    assert run(fake, app_id)["saleor app"].status is Status.OK
    assert fake.counts()["app"] == 2


def test_no_app_id_output_is_a_skip_and_no_password_a_fail():
    assert saleor.check(target({}))[0].status is Status.SKIP
    check = saleor.check(target({"saleorAppId": "QXBwOjE="}))[0]
    assert check.status is Status.FAIL and "SALEOR_STAFF_PASSWORD is not set" in check.reason
