"""Saleor delivery signatures, checked on the raw body bytes before anything parses them.

Saleor signs a webhook whose app has no secret key with a detached JWS with an unencoded payload (RFC 7797) in
the Saleor-Signature header: protected header ``{"alg": "RS256", "b64": false, "crit": ["b64"], "kid": ...}``,
value ``<b64url header>..<b64url signature>``, signing input ``b64url(header) + "." + raw body``. joserfc parses
and verifies it; on top of joserfc we pin the algorithm to RS256 and require ``b64:false`` with ``crit [b64]``,
whatever else joserfc would accept. The key comes from the JWKS at the origin of Saleor-Api-Url (``jwks.py``).
Nothing else is accepted: a legacy hex HMAC of the body is not a JWS and is refused like any other garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

ALGORITHM = "RS256"


class SignatureError(Exception):
    """The delivery is not proven to come from Saleor: answer 401, store nothing."""


class KeysUnavailable(Exception):
    """The JWKS could not be fetched: answer 503 so Saleor retries later."""


def _registry(max_payload_bytes: int) -> jws.JWSRegistry:
    registry = jws.JWSRegistry(algorithms=[ALGORITHM])
    registry.max_payload_length = max_payload_bytes  # the body is already bounded by MAX_BODY_BYTES
    return registry


@dataclass(frozen=True)
class DetachedJws:
    signature: jws.CompactSignature  # joserfc's parse, with the body as its unencoded payload
    kid: str
    registry: jws.JWSRegistry


def parse_detached_jws(value: str, body: bytes, *, max_body_bytes: int = 1 << 24) -> DetachedJws:
    """Parse the signature around ``body`` and check the protected header; the key lookup and the math come after."""
    registry = _registry(max(max_body_bytes, len(body)))
    parts = value.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureError("Saleor-Signature is not a detached JWS (<header>..<signature>)")
    try:
        signature = jws.extract_compact(value.encode("ascii"), payload=body, registry=registry)
        header = signature.headers()
    except (JoseError, ValueError, UnicodeError) as exc:
        raise SignatureError(f"Saleor-Signature is not a valid JWS: {type(exc).__name__}") from exc
    if header.get("alg") != ALGORITHM:
        raise SignatureError(f"Saleor-Signature alg must be RS256, got {header.get('alg')!r}")
    if header.get("b64") is not False or "b64" not in (header.get("crit") or []):
        raise SignatureError("Saleor-Signature must be an unencoded-payload JWS (b64:false, crit [b64])")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureError("Saleor-Signature header has no kid")
    return DetachedJws(signature, kid, registry)


def verify_jws(parsed: DetachedJws, key: RSAKey) -> None:
    try:
        valid = jws.validate_compact(parsed.signature, key, registry=parsed.registry)
    except JoseError as exc:
        raise SignatureError(f"Saleor-Signature cannot be verified with key {parsed.kid!r}: {exc.error}") from exc
    if not valid:
        raise SignatureError("Saleor-Signature does not match the body")
