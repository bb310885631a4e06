"""Caller identity: the tenant comes only from a verified HS256 JWT, never from the body or the path."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import jwt

from service_src.connector_gateway.errors import GatewayError, unauthorized

# One segment of a Vault path: no dots, slashes, percent signs, whitespace or control characters.
SEGMENT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SEGMENT_RULE = "1-64 characters of [A-Za-z0-9_-], starting with a letter or digit"

CONTROL_PLANE_AUDIENCE = "cmp-control-plane"
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


def bearer_token(header: str | None) -> str:
    if not header:
        raise unauthorized("missing Authorization: Bearer <token> header")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


class CallerVerifier:
    """Verifies callers' JWTs (HS256, claims org, project, sub, exp) signed with SERVICE_JWT_SECRET."""

    def __init__(self, secret: str, *, cache_size: int = 10_000) -> None:
        self._secret = secret
        # A token string verified once verifies the same way until it expires: cache (caller, exp) by token,
        # because PyJWT's HMAC key preparation costs more than the rest of the hot path together.
        self._verified: dict[str, tuple[Caller, float]] = {}
        self._cache_size = cache_size

    def verify(self, token: str) -> Caller:
        hit = self._verified.get(token)
        if hit is not None:
            if time.time() < hit[1]:
                return hit[0]
            del self._verified[token]
        caller, exp = self._verify(token)
        if len(self._verified) >= self._cache_size:
            self._verified.clear()
        self._verified[token] = (caller, exp)
        return caller

    def _verify(self, token: str) -> tuple[Caller, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "org", "project", "sub"], "verify_aud": False},
                leeway=5,
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token expired") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"token lacks the required claim {exc.claim!r}") from None
        except jwt.InvalidSignatureError:
            raise unauthorized("token signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise unauthorized(f"token is not a valid HS256 JWT ({type(exc).__name__})") from None
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


class ServiceTokenMinter:
    """Mints the gateway's own JWT for the control plane, reused until a minute before it expires."""

    def __init__(self, secret: str, issuer: str = SERVICE_ISSUER) -> None:
        self._secret = secret
        self._issuer = issuer
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        now = time.time()
        if now >= self._renew_at:
            iat = int(now)
            claims = {"iss": self._issuer, "aud": CONTROL_PLANE_AUDIENCE, "iat": iat,
                      "exp": iat + SERVICE_TOKEN_LIFETIME_S}
            self._token = jwt.encode(claims, self._secret, algorithm="HS256")
            self._renew_at = now + SERVICE_TOKEN_LIFETIME_S - 60
        return self._token
