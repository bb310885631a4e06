"""The service's own JWT for the control plane: HS256 with SERVICE_JWT_SECRET, re-minted a minute before expiry.

Claims: ``iss`` (the service's name), ``aud`` cmp-control-plane, ``iat``, ``exp`` (the contract allows at most
five minutes), and ``sub`` when the service names one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

CONTROL_PLANE_AUDIENCE = "cmp-control-plane"
RENEW_BEFORE_SECONDS = 60


class ServiceToken:
    def __init__(
        self,
        secret: str,
        *,
        issuer: str,
        lifetime_seconds: int,
        subject: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._issuer = issuer
        self._subject = subject
        self._lifetime = lifetime_seconds
        self._clock = clock
        self._token = ""
        self._expires = 0.0

    def __repr__(self) -> str:
        return f"ServiceToken(iss={self._issuer})"

    def token(self) -> str:
        now = self._clock()
        if not self._token or self._expires - now < RENEW_BEFORE_SECONDS:
            issued = int(now)
            claims = {"iss": self._issuer, "aud": CONTROL_PLANE_AUDIENCE, "iat": issued, "exp": issued + self._lifetime}
            if self._subject is not None:
                claims["sub"] = self._subject
            self._token = jwt.encode(claims, self._secret, algorithm="HS256")
            self._expires = issued + self._lifetime
        return self._token
