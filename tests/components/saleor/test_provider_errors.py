"""Error paths: Saleor's three error forms, bad credentials and permissions, bounded retries, no leaked secrets."""

from __future__ import annotations

import logging
import time

import pytest

from components.saleor.documents import order_subscription
from components.saleor.errors import SaleorError, SaleorUnavailable
from components.saleor.provider import SaleorAppProvider, SaleorWebhookProvider
from components.saleor.settings import SettingsError
from tests.components.saleor.conftest import ConfigRequest, configured
from tests.components.saleor.fake_saleor import FakeSaleor
from tests.support.net import free_port

APP = {"name": "CMP Provisioner", "identifier": "cmp-provisioner", "permissions": ["MANAGE_ORDERS"]}
URL = "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-created"


def hook(app_id, **changes):
    props = {"app_id": app_id, "name": "OrderCreated", "target_url": URL, "async_events": ["ORDER_CREATED"],
             "query": order_subscription("ORDER_CREATED"), "is_active": True, "custom_headers": {}}
    props.update(changes)
    return props


def assert_no_secrets(text: str, fake: FakeSaleor) -> None:
    assert fake.staff.password not in text
    for token in (*fake.issued_tokens, *fake.app_tokens):
        assert token not in text


@pytest.fixture
def app_id(app_provider):
    return app_provider.create(dict(APP)).id


@pytest.mark.server
def test_staff_without_manage_apps_fails_before_creating_anything(caplog, schema_dir):
    with FakeSaleor(staff_permissions=("MANAGE_ORDERS",)) as fake:
        provider = configured(SaleorAppProvider, fake)
        with pytest.raises(SaleorError) as info:
            provider.create(dict(APP))
        message = str(info.value)
        assert "field 'permissions'" in message and "MANAGE_APPS" in message and "PermissionDenied" in message
        assert fake.count("appCreate") == 0 and fake.live_apps() == []
        assert_no_secrets(message + caplog.text, fake)


@pytest.mark.server
def test_mutation_errors_name_operation_field_and_code(schema_dir):
    # Saleor refuses to grant an app a permission the staff user does not hold (errors[] with HTTP 200).
    with FakeSaleor(staff_permissions=("MANAGE_APPS",)) as fake:
        with pytest.raises(SaleorError) as info:
            configured(SaleorAppProvider, fake).create(dict(APP))
        assert str(info.value).startswith(
            "create SaleorApp 'CMP Provisioner': Saleor appCreate failed: field 'permissions' code "
            "OUT_OF_SCOPE_PERMISSION"
        )
        assert "fix: give the staff user every permission the app gets" in str(info.value)
        assert "MANAGE_ORDERS" in str(info.value) and fake.live_apps() == []


def test_top_level_permission_denied(fake_saleor, webhook_provider, app_id):
    fake_saleor.fail_next("permission_denied", root="webhookCreate")
    with pytest.raises(SaleorError) as info:
        webhook_provider.create(hook(app_id))
    assert str(info.value).startswith(
        "create SaleorWebhook 'OrderCreated' [ORDER_CREATED]: Saleor webhookCreate failed: field 'webhookCreate' "
        "code PermissionDenied"
    )
    assert "fix: give the staff user MANAGE_APPS" in str(info.value)
    assert fake_saleor.live_webhooks() == []


def test_http_400_invalid_document_names_the_field(fake_saleor, webhook_provider, app_id):
    # An event name only check() would catch: Saleor rejects the variables with HTTP 400.
    with pytest.raises(SaleorError) as info:
        webhook_provider.create(hook(app_id, async_events=["ORDER_PAID_IN_FULL"]))
    message = str(info.value)
    assert message.startswith("create SaleorWebhook 'OrderCreated' [ORDER_PAID_IN_FULL]: Saleor webhookCreate failed:")
    assert "code GraphQLError" in message and "fix: the document does not fit this Saleor's schema" in message
    assert "asyncEvents" in message and "ORDER_PAID_IN_FULL" in message
    assert fake_saleor.requests[-1].status == 400 and fake_saleor.live_webhooks() == []


def test_invalid_query_reaching_saleor_creates_nothing(fake_saleor, webhook_provider, app_id):
    with pytest.raises(SaleorError, match="field 'query' code SYNTAX"):
        webhook_provider.create(hook(app_id, query="subscription { event { "))
    assert fake_saleor.live_webhooks() == []


def test_wrong_password_never_appears(fake_saleor, caplog):
    caplog.set_level(logging.DEBUG)
    provider = configured(SaleorAppProvider, fake_saleor, password="wrong-Pa55word")
    with pytest.raises(SaleorError) as info:
        provider.create(dict(APP))
    assert "tokenCreate" in str(info.value) and "INVALID_CREDENTIALS" in str(info.value)
    assert "wrong-Pa55word" not in str(info.value) + caplog.text
    assert fake_saleor.live_apps() == []


def test_5xx_and_dropped_connections_are_retried(fake_saleor, app_provider, app_id, caplog):
    fake_saleor.reset_counts()
    fake_saleor.fail_next("http_503", root="app")
    fake_saleor.fail_next("disconnect", root="app")
    assert app_provider.read(app_id, {}).id == app_id
    assert fake_saleor.count("app") == 3
    assert "retry" in caplog.text
    assert_no_secrets(caplog.text, fake_saleor)


def test_retries_are_bounded_in_count(fake_saleor, app_provider, app_id):
    fake_saleor.reset_counts()
    fake_saleor.fail_next("http_502", root="app", times=50)
    with pytest.raises(SaleorUnavailable, match=r"HTTP 502 after 3 attempt\(s\).*maxAttempts=3"):
        app_provider.read(app_id, {})
    assert fake_saleor.count("app") == 3


def test_retries_are_bounded_in_time(fake_saleor, app_id):
    provider = configured(SaleorAppProvider, fake_saleor, maxAttempts=10, retryBackoffSeconds=0.2,
                          retryDeadlineSeconds=0.5)
    fake_saleor.fail_next("http_503", root="app", times=50)
    started = time.monotonic()
    with pytest.raises(SaleorUnavailable, match=r"retryDeadlineSeconds=0\.5"):
        provider.read(app_id, {})
    assert time.monotonic() - started < 2.0
    assert fake_saleor.count("app") < 10


def test_connection_refused_is_retried_then_reported(fake_saleor):
    provider = configured(SaleorAppProvider, fake_saleor)
    dead_url = f"http://127.0.0.1:{free_port()}/graphql/"
    provider._settings = provider._settings.model_copy(
        update={"config": provider._settings.config.model_copy(update={"api_url": dead_url})}
    )
    with pytest.raises(SaleorUnavailable, match=r"ConnectError after 3 attempt\(s\)"):
        provider.create(dict(APP))


def test_create_is_not_retried_when_saleor_may_have_run_it(fake_saleor, app_provider):
    fake_saleor.fail_next("disconnect_after", root="appCreate")
    with pytest.raises(SaleorUnavailable, match="not retried"):
        app_provider.create(dict(APP))
    assert fake_saleor.count("appCreate") == 1  # a retry could have made a second app


def test_create_that_fails_part_way_deletes_the_app_it_made(fake_saleor, app_provider):
    fake_saleor.fail_next("drop_auth_token", root="appCreate")
    with pytest.raises(SaleorError, match="field 'authToken' code MISSING"):
        app_provider.create(dict(APP))
    assert fake_saleor.count("appCreate") == 1 and fake_saleor.count("appDelete") == 1
    assert fake_saleor.live_apps() == []  # no app left that Pulumi does not track


def test_mutation_5xx_is_retried(fake_saleor, webhook_provider, app_id):
    fake_saleor.fail_next("http_500", root="webhookCreate")
    created = webhook_provider.create(hook(app_id))
    assert fake_saleor.count("webhookCreate") == 2
    assert [w["id"] for w in fake_saleor.live_webhooks()] == [created.id]


def test_redirect_names_api_url(fake_saleor):
    provider = configured(SaleorAppProvider, fake_saleor)
    no_slash = fake_saleor.api_url.rstrip("/")
    provider._settings = provider._settings.model_copy(
        update={"config": provider._settings.config.model_copy(update={"api_url": no_slash})}
    )
    with pytest.raises(SaleorError, match=r"field 'apiUrl' code HTTP 301.*ends with /graphql/"):
        provider.create(dict(APP))


def test_missing_settings_fail_crud_but_not_check(monkeypatch):
    for name in ("SALEOR_API_URL", "SALEOR_STAFF_EMAIL", "SALEOR_STAFF_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    provider = SaleorWebhookProvider()
    provider.configure(ConfigRequest({}))
    assert provider.check({}, hook("QXBwOjE=")).failures == []
    with pytest.raises(SettingsError, match=r"cmp-platform:saleor\.apiUrl"):
        provider.create(hook("QXBwOjE="))


def test_env_fallback_and_missing_password(monkeypatch, fake_saleor):
    monkeypatch.setenv("SALEOR_API_URL", fake_saleor.api_url)
    monkeypatch.setenv("SALEOR_STAFF_EMAIL", fake_saleor.staff.email)
    monkeypatch.delenv("SALEOR_STAFF_PASSWORD", raising=False)
    provider = SaleorAppProvider()
    provider.configure(ConfigRequest({}))
    with pytest.raises(SettingsError, match="pulumi config set --secret cmp-platform:saleorStaffPassword"):
        provider.create(dict(APP))
    monkeypatch.setenv("SALEOR_STAFF_PASSWORD", fake_saleor.staff.password)
    provider.configure(ConfigRequest({}))
    assert provider.create(dict(APP)).id
