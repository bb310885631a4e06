"""The control-plane fake's side of caller identity: its signing keys, its JWKS, and a token endpoint.

The control plane signs the JWTs that runtimes present to the connector gateway, and publishes the public keys
as a JWKS. Behaving like a real authorization server where the gateway and the MCP SDK client meet it:
- ``GET /.well-known/jwks.json``: RFC 7517 JWK Set, one key per ``kid``, ``use: sig``; RS256 (RSA 2048),
  ES256 (P-256) and EdDSA (Ed25519). The Ed25519 entry carries no ``alg`` member, as RFC 8037 allows, so the
  gateway must take the algorithm from ``kty``/``crv``.
- ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata whose ``issuer`` is exactly the fake's URL
  (the SDK's ``ClientCredentialsOAuthProvider`` compares it with the configured issuer,
  mcp/client/auth/extensions/client_credentials.py). ``authorization_endpoint`` is listed because the metadata
  requires it; only the client-credentials grant is served.
- ``POST /oauth/token``: RFC 6749 §4.4 client credentials, client authentication by HTTP Basic or form fields
  (§2.3.1); the RFC 8707 ``resource`` parameter becomes the token's ``aud``. Errors are the §5.2 JSON
  ``{"error": ...}`` with 400/401. Tokens live 300 s, like the control plane's service tokens.
Keys are generated once per process and handed out in order, so many fakes cost one key generation each.
"""

from __future__ import annotations

import base64
import functools
import itertools
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
TOKEN_PATH = "/oauth/token"
PUBLIC_PATHS = frozenset({JWKS_PATH, METADATA_PATH, TOKEN_PATH})  # no service JWT needed, as on the real CP
DEFAULT_AUDIENCE = "cmp-connector-gateway"
TOKEN_LIFETIME_S = 300
ALGORITHMS = ("RS256", "ES256", "EdDSA")


@functools.cache
def _private_key(alg: str, index: int):
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported algorithm {alg}")


def public_jwk(alg: str, private_key, kid: str) -> dict[str, Any]:
    codec = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[alg]
    entry = codec.to_jwk(private_key.public_key(), as_dict=True)
    entry.update(kid=kid, use="sig")
    if alg != "EdDSA":
        entry["alg"] = alg
    return entry


@dataclass
class SigningKey:
    kid: str
    alg: str
    private_key: Any
    published: bool = True


@dataclass
class Client:
    secret: str
    org: str
    project: str


class CallerKeyring:
    """One key per algorithm to start with; ``rotate`` and ``retire`` change what the JWKS publishes."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.keys: dict[str, SigningKey] = {}
        self.clients: dict[str, Client] = {}
        self.jwks_fetches = 0
        self._index = itertools.count()
        for alg in ALGORITHMS:
            self.add_key(alg)

    def add_key(self, alg: str, *, published: bool = True) -> str:
        index = next(self._index)
        kid = f"{alg.lower()}-{index}"
        self.keys[kid] = SigningKey(kid, alg, _private_key(alg, index), published)
        return kid

    def current(self, alg: str) -> SigningKey:
        """The newest published key of ``alg``."""
        return [k for k in self.keys.values() if k.alg == alg and k.published][-1]

    def rotate(self, alg: str) -> str:
        """Publish a new key of ``alg`` next to the old one (tokens signed by either verify)."""
        return self.add_key(alg)

    def retire(self, kid: str) -> None:
        self.keys[kid].published = False

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k.alg, k.private_key, k.kid) for k in self.keys.values() if k.published]}

    def mint(self, claims: dict[str, Any], *, alg: str = "ES256", kid: str | None = None,
             lifetime: int = TOKEN_LIFETIME_S, audience: str | None = DEFAULT_AUDIENCE,
             issuer: str | None = None) -> str:
        """A caller JWT as the control plane signs it; ``None`` values leave a claim out."""
        key = self.keys[kid] if kid is not None else self.current(alg)
        now = int(time.time())
        full = {"iss": issuer if issuer is not None else self.issuer, "aud": audience, "iat": now,
                "exp": now + lifetime, **claims}
        return jwt.encode({k: v for k, v in full.items() if v is not None}, key.private_key, algorithm=key.alg,
                          headers={"kid": key.kid})

    def add_client(self, client_id: str, secret: str, org: str, project: str) -> None:
        """A runtime's OAuth client, whose tokens carry this org and project."""
        self.clients[client_id] = Client(secret, org, project)


def _client_credentials(request: Request, form) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return client_id, secret
    if "client_id" in form:
        return str(form["client_id"]), str(form.get("client_secret", ""))
    return None


def add_authorization_server_routes(app: FastAPI, keyring: CallerKeyring) -> None:
    @app.get(JWKS_PATH)
    async def jwks():
        keyring.jwks_fetches += 1
        return keyring.jwks()

    @app.get(METADATA_PATH)
    async def metadata():
        base = keyring.issuer
        return {"issuer": base, "authorization_endpoint": f"{base}/oauth/authorize",
                "token_endpoint": f"{base}{TOKEN_PATH}", "jwks_uri": f"{base}{JWKS_PATH}",
                "grant_types_supported": ["client_credentials"], "response_types_supported": ["code"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}

    @app.post(TOKEN_PATH)
    async def token(request: Request):
        form = await request.form()
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        credentials = _client_credentials(request, form)
        client = keyring.clients.get(credentials[0]) if credentials else None
        if client is None or client.secret != credentials[1]:
            return JSONResponse({"error": "invalid_client"}, status_code=401,
                                headers={"www-authenticate": 'Basic realm="cmp-control-plane"'})
        audience = str(form.get("resource") or DEFAULT_AUDIENCE)
        access = keyring.mint({"org": client.org, "project": client.project, "sub": credentials[0]},
                              audience=audience)
        return {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S}
