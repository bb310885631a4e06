"""Saleor delivery signatures, checked on the raw body bytes before anything parses them.

Two forms reach us in the Saleor-Signature header:
- a detached JWS, RS256 with ``b64:false`` (``<b64url header>..<b64url signature>``); its signing input is
  ``b64url(header) + "." + raw body``, and the key comes from the JWKS at the origin of Saleor-Api-Url;
- a legacy hex HMAC-SHA256 of the raw body, accepted only when SALEOR_LEGACY_HMAC is on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

_HEX_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class SignatureError(Exception):
    """The delivery is not proven to come from Saleor: answer 401, store nothing."""


class KeysUnavailable(Exception):
    """The JWKS could not be fetched: answer 503 so Saleor retries later."""


def b64url_decode(value: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("Saleor-Signature is not base64url") from exc


@dataclass(frozen=True)
class DetachedJws:
    header_b64: str
    signature: bytes
    kid: str


def parse_detached_jws(value: str) -> DetachedJws:
    """Split and check the protected header; the key lookup and the math come after."""
    parts = value.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureError("Saleor-Signature is not a detached JWS (<header>..<signature>)")
    header_b64, _, sig_b64 = parts
    try:
        header = json.loads(b64url_decode(header_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError("Saleor-Signature header is not base64url JSON") from exc
    if not isinstance(header, dict):
        raise SignatureError("Saleor-Signature header is not a JSON object")
    if header.get("alg") != "RS256":
        raise SignatureError(f"Saleor-Signature alg must be RS256, got {header.get('alg')!r}")
    if header.get("b64") is not False or "b64" not in (header.get("crit") or []):
        raise SignatureError("Saleor-Signature must be an unencoded-payload JWS (b64:false, crit [b64])")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise SignatureError("Saleor-Signature header has no kid")
    return DetachedJws(header_b64=header_b64, signature=b64url_decode(sig_b64), kid=kid)


def verify_jws(jws: DetachedJws, body: bytes, key: rsa.RSAPublicKey) -> None:
    signing_input = jws.header_b64.encode("ascii") + b"." + body
    try:
        key.verify(jws.signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureError("Saleor-Signature does not match the body") from exc


def is_hex_hmac(value: str) -> bool:
    return bool(_HEX_SHA256.match(value))


def verify_hmac(signature_hex: str, body: bytes, secret: bytes) -> None:
    """Constant-time compare of the hex HMAC-SHA256 of the raw body."""
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature_hex.lower()):
        raise SignatureError("Saleor-Signature HMAC does not match the body")


def rsa_key_from_jwk(jwk: dict) -> rsa.RSAPublicKey:
    """An RSA public key from its JWK members n and e; ValueError when the JWK is not one."""
    if jwk.get("kty") != "RSA" or not isinstance(jwk.get("n"), str) or not isinstance(jwk.get("e"), str):
        raise ValueError("not an RSA JWK with n and e")
    n = int.from_bytes(b64url_decode(jwk["n"]), "big")
    e = int.from_bytes(b64url_decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()
