"""Caller identity: the tenant comes only from a verified JWT, never from the body or the path."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

import jwt

from service_src.common.tokens import ServiceToken
from service_src.connector_gateway.errors import BEARER_CHALLENGE, GatewayError, unauthorized
from service_src.connector_gateway.jwks import CallerKeys

# One segment of a Vault path: no dots, slashes, percent signs, whitespace or control characters.
SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SEGMENT_RULE = "1-64 characters of [A-Za-z0-9_-], starting with a letter or digit"

SERVICE_ISSUER = "cmp-connector"
SERVICE_TOKEN_LIFETIME_S = 300


@dataclass(frozen=True, slots=True)
class Caller:
    org: str
    project: str
    sub: str


def check_segment(kind: str, value: object) -> str:
    """Refuse anything that could leave the tenant's Vault prefix, before any Vault call."""
    if not isinstance(value, str) or not SEGMENT_PATTERN.fullmatch(value):
        shown = repr(value)[:80] if isinstance(value, str) else type(value).__name__
        raise GatewayError(400, "invalid_" + kind, f"{kind} {shown} must be {SEGMENT_RULE}")
    return value


def ambiguous_credentials() -> GatewayError:
    return GatewayError(401, "ambiguous_credentials", "send exactly one Authorization field with one value "
                        "'Bearer <token>' (RFC 9110 allows one)", headers={"www-authenticate": BEARER_CHALLENGE})


def authorization_field(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The one Authorization value of an ASGI request, None without one; 401 ``ambiguous_credentials`` for two
    fields or a comma-joined value (a JWT never holds a comma), so no layer can pick a different one."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                raise ambiguous_credentials()
            found = value
    if found is None:
        return None
    if b"," in found:
        raise ambiguous_credentials()
    return found.decode("latin-1")


def bearer_token(header: str | None) -> str:
    if not header:
        raise unauthorized("missing Authorization: Bearer <token> header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


class CallerVerifier:
    """Decides who calls, for REST and MCP alike: a JWT with claims org, project, sub, exp, aud (and iss).

    Signed by a key of the control plane's JWKS (``keys``; the algorithm is the key's), or, only when
    CALLER_AUTH_MODE=hs256, with the shared secret. ``audience`` is per transport: CALLER_AUDIENCE for REST,
    the canonical /mcp URI for MCP.
    """

    def __init__(self, *, keys: CallerKeys | None = None, secret: str | None = None, issuer: str | None = None,
                 cache_size: int = 10_000) -> None:
        if (keys is None) == (secret is None):
            raise ValueError("give the JWKS keys or the HS256 secret, not both")
        self._keys = keys
        self._secret = secret
        self._issuer = issuer
        self._require = ["exp", "aud", "org", "project", "sub"] + (["iss"] if issuer else [])
        # A token verified once for an audience verifies the same way until it expires (or the key set changes):
        # cache (caller, exp) by (audience, token), as signature checks cost more than the rest of the hot path.
        self._verified: dict[tuple[str, str], tuple[Caller, float]] = {}
        self._generation = keys.generation if keys is not None else 0
        self._cache_size = cache_size

    async def verify(self, token: str, audience: str) -> Caller:
        if self._keys is not None and self._keys.generation != self._generation:
            self._verified.clear()  # a key was rotated out: what it verified must be checked again
            self._generation = self._keys.generation
        cache_key = (audience, token)
        hit = self._verified.get(cache_key)
        if hit is not None:
            if time.time() < hit[1]:
                return hit[0]
            del self._verified[cache_key]
        if self._keys is not None:
            key = await self._keys.key(_kid(token))
            caller, exp = self._decode(token, key, None, audience)
        else:
            caller, exp = self._decode(token, self._secret, ["HS256"], audience)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[cache_key] = (caller, exp)
        return caller

    def _decode(self, token: str, key, algorithms: list[str] | None, audience: str) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(token, key, algorithms=algorithms, audience=audience, issuer=self._issuer,
                                options={"require": self._require}, leeway=5)
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"token lacks the required claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise unauthorized("token signature does not verify") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(f"token audience is not {audience!r}") from None
        except jwt.InvalidIssuerError:
            raise unauthorized(f"token issuer is not {self._issuer!r}") from None
        except jwt.InvalidAlgorithmError:
            raise unauthorized("token algorithm is not the signing key's") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"token is not a valid JWT ({type(exc).__name__})") from None
        for claim in ("org", "project"):
            value = claims[claim]
            if not isinstance(value, str) or not SEGMENT_PATTERN.fullmatch(value):
                raise unauthorized(f"token claim {claim!r} must be {SEGMENT_RULE}")
        sub = claims["sub"]
        if not isinstance(sub, str) or not sub or len(sub) > 256:
            raise unauthorized("token claim 'sub' must be a non-empty string of at most 256 characters")
        exp = claims["exp"]
        if not isinstance(exp, int | float):
            raise unauthorized("token claim 'exp' must be a number")
        return Caller(org=claims["org"], project=claims["project"], sub=sub), float(exp)


def _kid(token: str) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise unauthorized(f"token is not a valid JWT ({type(exc).__name__})") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise unauthorized("token header lacks 'kid' (the caller JWKS key that signed it)")
    return kid


def service_token(secret: str) -> ServiceToken:
    """The gateway's own JWT for the control plane (``iss`` cmp-connector, five minutes, no ``sub``)."""
    return ServiceToken(secret, issuer=SERVICE_ISSUER, lifetime_seconds=SERVICE_TOKEN_LIFETIME_S)

