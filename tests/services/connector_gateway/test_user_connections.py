"""Per-user connections against the real OpenBao: each user's call runs with that user's own token, a missing one
is connection_required with the connect URL (MCP: -32042), an expired one is refreshed once and written back with
check-and-set, and no order or concurrency ever hands one user another's credential."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from mcp import MCPError, UrlElicitationRequiredError

from components.vault.paths import CONNECTOR_CREDENTIALS_PREFIX, CONNECTOR_MOUNT
from tests.services.connector_gateway.mcp_helpers import mcp_client

CONNECT = "https://cp.example/connect"
APPS = {  # binding -> (connector, the OAuth client stored at the binding's own path)
    "zd-me": ("zendesk", {"subdomain": "acme", "client_id": "zd-client", "client_secret": "zd-client-secret"}),
    "chat-me": ("slack", {"client_id": "slack-client", "client_secret": "slack-client-secret"}),
    "crm-me": ("hubspot", {"client_id": "hs-client", "client_secret": "hs-client-secret"}),
}
TOOLS = {"zd-me": ["zendesk.create_ticket", "zendesk.get_ticket"], "chat-me": ["slack.post_message"],
         "crm-me": ["hubspot.create_contact"]}


def _path(binding: str, sub: str) -> str:
    return f"{CONNECTOR_CREDENTIALS_PREFIX}/acme/support/{binding}/users/{sub}"


class Users:
    """Connects users the way the control plane's connect flow would: tokens from the vendor, stored in Vault."""

    def __init__(self, bao, saas) -> None:
        self.vault = bao.client()
        self.saas = saas

    def connect(self, binding: str, sub: str) -> dict[str, str]:
        connector = APPS[binding][0]
        tokens = self.saas.oauth[connector].connect(sub)
        self.vault.secrets.kv.v2.create_or_update_secret(path=_path(binding, sub), secret=tokens,
                                                         mount_point=CONNECTOR_MOUNT)
        return tokens

    def stored(self, binding: str, sub: str) -> tuple[dict[str, str], int]:
        answer = self.vault.secrets.kv.v2.read_secret_version(path=_path(binding, sub), mount_point=CONNECTOR_MOUNT,
                                                              raise_on_deleted_version=True)
        return answer["data"]["data"], answer["data"]["metadata"]["version"]


@pytest.fixture
def users(seeded_openbao, policies, saas):
    client = seeded_openbao.client()
    bindings = []
    for binding, (connector, app) in APPS.items():
        client.secrets.kv.v2.create_or_update_secret(path=f"{CONNECTOR_CREDENTIALS_PREFIX}/acme/support/{binding}",
                                                     secret=app, mount_point=CONNECTOR_MOUNT)
        saas.oauth[connector].clients[app["client_id"]] = app["client_secret"]
        bindings.append({"binding": binding, "connector": connector, "tools": TOOLS[binding], "per_user": True,
                         "connect_url": f"{CONNECT}/{binding}"})
    policies.set_policy("acme", "support", bindings)
    made = Users(seeded_openbao, saas)
    yield made
    for binding in APPS:  # the next test starts with nobody connected
        for sub in ("agent-a", "agent-b", "agent-c"):
            client.secrets.kv.v2.delete_metadata_and_all_versions(path=_path(binding, sub),
                                                                  mount_point=CONNECTOR_MOUNT)


def _ticket(gw, sub: str, subject: str = "hello"):
    return gw.invoke("zendesk.create_ticket", {"binding": "zd-me", "arguments": {"subject": subject, "body": "b"}},
                     sub=sub)


def test_each_user_calls_with_their_own_token(gateway, users, saas):
    a = users.connect("zd-me", "agent-a")
    b = users.connect("zd-me", "agent-b")
    assert _ticket(gateway, "agent-a").status_code == 200
    assert _ticket(gateway, "agent-b").status_code == 200
    assert [c.authorization for c in saas.calls_to("zendesk")] == [
        f"Bearer {a['access_token']}", f"Bearer {b['access_token']}"]


def test_an_unconnected_user_gets_connection_required_with_the_connect_url(gateway, users, saas):
    users.connect("zd-me", "agent-a")
    r = _ticket(gateway, "agent-b")
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "connection_required"
    assert r.json()["connect_url"] == f"{CONNECT}/zd-me?user=agent-b"
    assert saas.calls == []
    line = gateway.audit()[-1]
    assert (line["sub"], line["status"], line["error"]) == ("agent-b", 403, "connection_required")


async def test_mcp_answers_a_missing_connection_with_the_url_elicitation_error(gateway, users, saas):
    async with mcp_client(gateway, sub="agent-c") as client:
        with pytest.raises(MCPError) as caught:
            await client.call_tool("slack.post_message",
                                   {"binding": "chat-me", "arguments": {"channel": "#general", "text": "hi"}})
    assert caught.value.error.code == -32042
    (elicitation,) = UrlElicitationRequiredError.from_error(caught.value.error).elicitations
    assert elicitation.mode == "url" and elicitation.url == f"{CONNECT}/chat-me?user=agent-c"
    assert elicitation.elicitation_id
    assert saas.calls == []


@pytest.mark.parametrize("sub", ["../agent-a", "agent-a/x", ".hidden", "a*", "x" * 200])
def test_a_subject_that_is_not_a_safe_path_segment_is_refused(gateway, users, saas, sub):
    users.connect("zd-me", "agent-a")
    r = _ticket(gateway, sub)
    assert r.status_code == 403 and r.json()["error"] == "invalid_subject", r.text
    assert saas.calls == []


@pytest.mark.parametrize("binding", list(APPS))
def test_an_expired_token_is_refreshed_once_written_back_and_the_call_retried(gateway, users, saas, binding):
    connector = APPS[binding][0]
    first = users.connect(binding, "agent-a")
    _, version = users.stored(binding, "agent-a")
    saas.oauth[connector].expire(first["access_token"])
    body = {"zd-me": ("zendesk.get_ticket", {"ticket_id": 1}),
            "chat-me": ("slack.post_message", {"channel": "#general", "text": "hi"}),
            "crm-me": ("hubspot.create_contact", {"email": "new@example.test"})}[binding]
    r = gateway.invoke(body[0], {"binding": binding, "arguments": body[1]}, sub="agent-a")
    assert r.status_code == 200, r.text
    assert saas.oauth[connector].grants == 1
    data, now = users.stored(binding, "agent-a")
    assert now == version + 1
    assert data["access_token"] != first["access_token"]
    assert saas.calls_to(connector)[-1].authorization == f"Bearer {data['access_token']}"
    rotates = saas.oauth[connector].rotates_refresh_token
    assert (data["refresh_token"] != first["refresh_token"]) is rotates
    assert int(data["expires_at"]) > 0


def test_a_refused_refresh_is_connection_required_again(gateway, users, saas):
    first = users.connect("zd-me", "agent-a")
    saas.oauth["zendesk"].expire(first["access_token"])
    saas.oauth["zendesk"].revoke_refresh_tokens("agent-a")
    r = _ticket(gateway, "agent-a")
    assert r.status_code == 403 and r.json()["error"] == "connection_required", r.text
    assert "invalid_grant" in r.json()["message"]
    assert r.json()["connect_url"] == f"{CONNECT}/zd-me?user=agent-a"
    assert users.stored("zd-me", "agent-a")[0] == first  # nothing written


def test_a_refresh_race_in_one_gateway_refreshes_and_writes_once(gateway, users, saas):
    first = users.connect("chat-me", "agent-a")
    _, version = users.stored("chat-me", "agent-a")
    saas.oauth["slack"].expire(first["access_token"])
    body = {"binding": "chat-me", "arguments": {"channel": "#general", "text": "hi"}}
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: gateway.invoke("slack.post_message", body, sub="agent-a"), range(24)))
    assert [r.status_code for r in answers] == [200] * 24
    assert saas.oauth["slack"].grants == 1
    assert users.stored("chat-me", "agent-a")[1] == version + 1


@pytest.mark.parametrize("connector_binding", ["zd-me", "crm-me"])
def test_a_refresh_race_between_two_replicas_writes_one_token(start_gateway, users, saas, connector_binding):
    """Two gateways (two replicas, two locks): check-and-set lets one write; the other uses the stored token.
    Zendesk revokes the refresh token on use (the loser's refresh is refused), HubSpot does not (both succeed)."""
    replicas = [start_gateway(), start_gateway()]
    connector = APPS[connector_binding][0]
    first = users.connect(connector_binding, "agent-a")
    _, version = users.stored(connector_binding, "agent-a")
    saas.oauth[connector].expire(first["access_token"])
    tool, arguments = {"zd-me": ("zendesk.get_ticket", {"ticket_id": 1}),
                       "crm-me": ("hubspot.create_contact", {"email": "x@example.test"})}[connector_binding]
    calls = [(replicas[i % 2], i) for i in range(16)]

    def call(item):
        gw, i = item
        args = {**arguments, "email": f"p{i}@example.test"} if "email" in arguments else arguments
        return gw.invoke(tool, {"binding": connector_binding, "arguments": args}, sub="agent-a")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, calls))
    assert [r.status_code for r in answers] == [200] * 16, [r.text for r in answers if r.status_code != 200]
    data, now = users.stored(connector_binding, "agent-a")
    assert now == version + 1
    assert saas.calls_to(connector)[-1].authorization == f"Bearer {data['access_token']}"


def test_no_user_ever_gets_another_users_credential(start_gateway, users, saas):
    """Three users, two replicas, every binding, random order, concurrent calls, tokens expiring mid-run: every
    upstream call carries a token the vendor issued to the user the call was made for."""
    replicas = [start_gateway(), start_gateway()]
    subs = ["agent-a", "agent-b", "agent-c"]
    tokens = {(binding, sub): users.connect(binding, sub) for binding in APPS for sub in subs}
    rng = random.Random(24)
    plan = [(rng.choice(replicas), rng.choice(list(APPS)), rng.choice(subs), i) for i in range(90)]
    expire_at = {30: ("zd-me", "agent-b"), 45: ("chat-me", "agent-a"), 60: ("crm-me", "agent-c")}

    def run(item):
        gw, binding, sub, i = item
        if i in expire_at:
            b, s = expire_at[i]
            saas.oauth[APPS[b][0]].expire(tokens[(b, s)]["access_token"])
        tag = f"{sub}:{i}"
        tool, arguments = {"zd-me": ("zendesk.create_ticket", {"subject": tag, "body": "b"}),
                           "chat-me": ("slack.post_message", {"channel": "#general", "text": tag}),
                           "crm-me": ("hubspot.create_contact", {"email": f"{sub}.{i}@example.test"})}[binding]
        return gw.invoke(tool, {"binding": binding, "arguments": arguments}, sub=sub)

    with ThreadPoolExecutor(9) as pool:
        answers = list(pool.map(run, plan))
    assert [r.status_code for r in answers] == [200] * len(plan), [r.text for r in answers if r.status_code != 200]
    checked = 0
    for call in saas.calls:
        if not (call.authorization or "").startswith("Bearer ") or call.body is None or "oauth" in call.path:
            continue
        vendor = saas.oauth[call.service]
        user = vendor.user_of(call.authorization[7:])
        tag = {"zendesk": lambda b: b["ticket"]["subject"], "slack": lambda b: b["text"],
               "hubspot": lambda b: b["properties"]["email"]}[call.service](call.body)
        assert tag.startswith(user), (call.service, tag, user)
        checked += 1
    assert checked >= len(plan)  # every call checked (a refreshed call shows twice: expired, then fresh)


def test_the_token_comes_only_from_the_user_and_the_account_only_from_the_binding():
    from service_src.connector_gateway.connectors import USER_AUTH

    app = {"subdomain": "acme", "client_id": "c", "client_secret": "s", "access_token": "binding-token"}
    user = {"access_token": "user-token", "refresh_token": "r", "subdomain": "elsewhere"}
    merged = USER_AUTH["zendesk"].user_credentials(app, user)
    assert (merged["access_token"], merged["subdomain"]) == ("user-token", "acme")
    assert "client_secret" not in merged
    assert USER_AUTH["slack"].user_credentials(app, {"access_token": "u"}) == {"access_token": "u"}
