"""Saleor delivery signatures, checked on the raw body bytes before anything parses them.

Saleor signs a webhook whose app has no secret key with a detached JWS with an unencoded payload (RFC 7797) in
the Saleor-Signature header: protected header ``{"alg": "RS256", "b64": false, "crit": ["b64"], "kid": ...}``,
value ``<b64url header>..<b64url signature>``, signing input ``b64url(header) + "." + raw body``. PyJWT verifies
it (the library Saleor signs with); before that we require exactly that form: RS256, ``b64:false`` listed in
``crit``, a kid. The key comes from the JWKS at the origin of Saleor-Api-Url (``jwks.py``). Nothing else is
accepted: a legacy hex HMAC of the body is not a JWS and is refused like any other garbage.
"""

from __future__ import annotations

import binascii
import json
from dataclasses import dataclass

import jwt
from jwt import api_jws
from jwt.utils import base64url_decode

ALGORITHM = "RS256"


class SignatureError(Exception):
    """The delivery is not proven to come from Saleor: answer 401, store nothing."""


@dataclass(frozen=True)
class DetachedJws:
    value: str  # the Saleor-Signature header
    body: bytes  # the unencoded payload
    kid: str


def parse_detached_jws(value: str, body: bytes) -> DetachedJws:
    """Parse the signature around ``body`` and check the protected header; the key lookup and the math come after."""
    parts = value.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureError("Saleor-Signature is not a detached JWS (<header>..<signature>)")
    # Only the header is read here, to find the key; PyJWT checks every segment strictly when it verifies.
    try:
        header = json.loads(base64url_decode(parts[0]))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SignatureError(f"Saleor-Signature is not a valid JWS: {type(exc).__name__}") from exc
    if not isinstance(header, dict):
        raise SignatureError("Saleor-Signature is not a valid JWS: its header is not a JSON object")
    if header.get("alg") != ALGORITHM:
        raise SignatureError(f"Saleor-Signature alg must be RS256, got {header.get('alg')!r}")
    crit = header.get("crit")
    if header.get("b64") is not False or not isinstance(crit, list) or "b64" not in crit:
        raise SignatureError("Saleor-Signature must be an unencoded-payload JWS (b64:false, crit [b64])")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureError("Saleor-Signature header has no kid")
    return DetachedJws(value, body, kid)


def verify_jws(parsed: DetachedJws, key: jwt.PyJWK) -> None:
    try:
        api_jws.decode_complete(parsed.value, key, algorithms=[ALGORITHM], detached_payload=parsed.body)
    except jwt.InvalidSignatureError as exc:
        raise SignatureError("Saleor-Signature does not match the body") from exc
    except jwt.PyJWTError as exc:
        raise SignatureError(f"Saleor-Signature cannot be verified with key {parsed.kid!r}: {exc}") from exc
