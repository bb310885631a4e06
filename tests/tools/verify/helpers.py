"""What the verify tests share: a Target over the real dev stack file, and a Saleor app deployed into the fake
through the same GraphQL mutations the provider sends."""

from __future__ import annotations

from typing import Any

import httpx

from components.saleor.component import APP_IDENTIFIER, APP_NAME, APP_PERMISSIONS
from components.saleor.documents import ORDER_EVENTS, document, order_subscription
from tools.verify.inputs import Target, load_config

WEBHOOK_URLS = {
    "order_cancelled": "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-cancelled",
    "order_created": "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-created",
    "order_fully_paid": "http://cmp-provisioner.cmp.svc.cluster.local:8000/webhooks/order-fully-paid",
}


def target(outputs: dict[str, Any] | None = None, *, env: dict[str, str] | None = None, stack: str = "dev",
           config_changes: dict[str, Any] | None = None, **fields: Any) -> Target:
    config = load_config(stack)
    if config_changes:
        config = config.model_copy(update=config_changes)
    return Target(stack=stack, outputs=outputs or {}, config=config, env=env or {}, timeout=5.0, **fields)


def _gql(client: httpx.Client, url: str, name: str, variables: dict[str, Any], token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    answer = client.post(url, json={"query": document(name), "variables": variables}, headers=headers).json()
    assert not answer.get("errors"), answer
    return answer["data"]


def deploy_app(fake, webhook_urls: dict[str, str] = WEBHOOK_URLS) -> tuple[str, dict[str, str]]:
    """The app "CMP Provisioner" and its three order webhooks, as `pulumi up` creates them: (app id, hook ids)."""
    with httpx.Client(timeout=10) as client:
        token = _gql(client, fake.api_url, "token_create",
                     {"email": fake.staff.email, "password": fake.staff.password})["tokenCreate"]["token"]
        app = _gql(client, fake.api_url, "app_create", {"input": {
            "name": APP_NAME, "identifier": APP_IDENTIFIER, "permissions": list(APP_PERMISSIONS)}}, token)
        app_id = app["appCreate"]["app"]["id"]
        hooks = {}
        for event, type_name in ORDER_EVENTS.items():
            created = _gql(client, fake.api_url, "webhook_create", {"input": {
                "app": app_id, "name": type_name, "targetUrl": webhook_urls[event.lower()],
                "asyncEvents": [event], "query": order_subscription(event), "isActive": True}}, token)
            hooks[event] = created["webhookCreate"]["webhook"]["id"]
    return app_id, hooks
