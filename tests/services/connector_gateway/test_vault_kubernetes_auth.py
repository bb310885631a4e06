"""In-cluster Vault auth: VAULT_AUTH_METHOD=kubernetes reads the service-account token file and logs in through
OpenBao's real kubernetes auth method, which checks the token with a (faked) Kubernetes TokenReview API."""

from __future__ import annotations

import json
import time
import uuid

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from tests.services.connector_gateway.fakes import read_body, send_json
from tests.support.net import run_uvicorn_in_thread

NAMESPACE, SERVICE_ACCOUNT = "cmp", "cmp-connector"


class TokenReviewFake:
    """POST /apis/authentication.k8s.io/v1/tokenreviews: authenticates exactly one service-account token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.reviews = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        self.reviews += 1
        ok = json.loads(body or b"{}").get("spec", {}).get("token") == self.token
        status = {"authenticated": ok}
        if ok:
            status["user"] = {"username": f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}", "uid": "sa-uid-1",
                              "groups": ["system:serviceaccounts"]}
        await send_json(send, 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})


def _service_account_jwt() -> str:
    now = int(time.time())
    claims = {
        "iss": "https://kubernetes.default.svc", "sub": f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}",
        "iat": now, "exp": now + 3600,
        "kubernetes.io": {"namespace": NAMESPACE, "serviceaccount": {"name": SERVICE_ACCOUNT, "uid": "sa-uid-1"}},
    }
    # Kubernetes signs service-account tokens with RS256/ES256; OpenBao refuses HMAC-signed ones outright.
    return jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")


def _ca_pem() -> str:
    """A throwaway CA certificate: OpenBao insists on one, though the fake API is plain HTTP on loopback."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-ca")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_kubernetes_auth_login_reads_credentials_with_a_scoped_policy(start_gateway, seeded_openbao, tmp_path):
    sa_token = _service_account_jwt()
    review = TokenReviewFake(sa_token)
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    client = seeded_openbao.client()
    client.sys.enable_auth_method("kubernetes", path=mount)
    client.sys.create_or_update_policy(f"{mount}-connector",
                                       'path "kv/data/connectors/*" { capabilities = ["read"] }')
    token_file = tmp_path / "token"
    token_file.write_text(sa_token + "\n")
    with run_uvicorn_in_thread(review) as k8s_url:
        client.write(f"auth/{mount}/config", kubernetes_host=k8s_url, disable_local_ca_jwt=True,
                     kubernetes_ca_cert=_ca_pem())
        client.write(f"auth/{mount}/role/cmp-connector", bound_service_account_names=SERVICE_ACCOUNT,
                     bound_service_account_namespaces=NAMESPACE, token_policies=f"{mount}-connector", token_ttl="5m")
        gw = start_gateway(vault_auth_method="kubernetes", vault_token=None, vault_k8s_auth_mount=mount,
                           vault_k8s_role="cmp-connector", vault_k8s_token_path=str(token_file),
                           credential_cache_ttl_seconds=0)
        r = gw.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
        assert r.status_code == 200, r.text
        assert review.reviews == 1
        assert f"auth/{mount}/login" in seeded_openbao.audit_paths()
        assert gw.http.get("/readyz").status_code == 200
        # The login token dies (expiry or revocation): the next read gets 403, logs in again once, and succeeds.
        client.auth.token.revoke(gw.app.gateway.credentials._client.token)
        assert gw.http.get("/readyz").status_code == 200  # readiness logs in again too
        assert review.reviews == 2
        client.auth.token.revoke(gw.app.gateway.credentials._client.token)
        again = gw.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
        assert again.status_code == 200, again.text
        assert review.reviews == 3


def test_kubernetes_auth_with_an_unreadable_token_file_is_503(start_gateway, tmp_path):
    gw = start_gateway(vault_auth_method="kubernetes", vault_token=None,
                       vault_k8s_token_path=str(tmp_path / "missing-token"))
    r = gw.invoke("zendesk.get_ticket", {"binding": "zd", "arguments": {"ticket_id": 1}})
    assert r.status_code == 503 and r.json()["error"] == "vault_unavailable"
    assert str(tmp_path / "missing-token") in r.json()["message"]
    assert "VAULT_AUTH_METHOD=token" in r.json()["message"]
    ready = gw.http.get("/readyz")
    assert ready.status_code == 503 and str(tmp_path / "missing-token") in ready.json()["checks"]["vault"]
