"""The three SaaS vendors' OAuth token endpoints and access-token checks, as each documents them, for the
per-user connections (fakes.py routes to them).

- Slack, token rotation (docs.slack.dev "Using token rotation", method ``oauth.v2.access``): the client
  authenticates with HTTP Basic; ``grant_type=refresh_token`` answers HTTP 200 ``{"ok": true, "access_token",
  "refresh_token", "expires_in": 43200, "token_type"}``; a refused refresh is HTTP 200 ``{"ok": false, "error":
  "invalid_refresh_token"}`` (``invalid_client_id``/``bad_client_secret`` for the client); an API call with an
  expired token is ``{"ok": false, "error": "token_expired"}``. The fake rotates the refresh token on each use.
- HubSpot (developers.hubspot.com "OAuth tokens", ``POST /oauth/v1/token``, form fields ``grant_type``,
  ``client_id``, ``client_secret``, ``refresh_token``): answers ``{"token_type": "bearer", "access_token",
  "refresh_token", "expires_in": 1800}`` with the same refresh token (no rotation); a bad one is HTTP 400
  ``{"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}``; an API call with an
  expired token is 401 with ``category: EXPIRED_AUTHENTICATION``.
- Zendesk ("OAuth Tokens for Grant Types", ``POST /oauth/tokens``): answers ``{"access_token", "token_type":
  "bearer", "refresh_token", "expires_in", "refresh_token_expires_in", "scope"}`` and deletes the previous
  access and refresh tokens; a bad refresh token is HTTP 400 ``{"error": "invalid_grant", "error_description"}``;
  an API call with an expired, revoked or unknown bearer token is 401 ``{"error": "invalid_token"}``.
"""

from __future__ import annotations

import base64
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class OAuthVendor:
    name: str
    expires_in: int
    rotates_refresh_token: bool
    revokes_previous_access_token: bool
    clients: dict[str, str] = field(default_factory=dict)  # client_id -> client_secret

    def __post_init__(self) -> None:
        self.access: dict[str, str] = {}  # live access token -> user
        self.issued: dict[str, str] = {}  # every access token ever issued -> user
        self.expired: set[str] = set()
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> user
        self.grants = 0  # successful refreshes
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def connect(self, user: str) -> dict[str, str]:
        """What the control plane's connect flow stores for ``user``: a fresh access and refresh token."""
        with self._lock:
            access, refresh = self._new_access(user), self._new_refresh(user)
        return {"access_token": access, "refresh_token": refresh}

    def expire(self, access_token: str) -> None:
        self.expired.add(access_token)

    def revoke_refresh_tokens(self, user: str) -> None:
        with self._lock:
            for token in [t for t, u in self.refresh_tokens.items() if u == user]:
                del self.refresh_tokens[token]

    def check(self, token: str | None) -> str:
        """``ok``, ``expired`` or ``invalid`` for an API call's bearer token."""
        if token in self.expired:
            return "expired"
        return "ok" if token in self.access else "invalid"

    def user_of(self, token: str) -> str:
        return self.issued[token]

    def grant(self, client_id: str | None, client_secret: str | None, refresh_token: str | None) -> dict[str, Any]:
        """A refresh: the new tokens, or ``{"refused": "client" | "refresh_token"}``."""
        if client_id not in self.clients or self.clients[client_id] != client_secret:
            return {"refused": "client"}
        with self._lock:
            user = self.refresh_tokens.get(refresh_token or "")
            if user is None:
                return {"refused": "refresh_token"}
            if self.revokes_previous_access_token:
                for token in [t for t, u in self.access.items() if u == user]:
                    del self.access[token]
            if self.rotates_refresh_token:
                del self.refresh_tokens[refresh_token]
                refresh_token = self._new_refresh(user)
            self.grants += 1
            return {"access_token": self._new_access(user), "refresh_token": refresh_token,
                    "expires_in": self.expires_in}

    def _new_access(self, user: str) -> str:
        token = f"{self.name}-access-{user}-{next(self._ids)}"
        self.access[token] = self.issued[token] = user
        return token

    def _new_refresh(self, user: str) -> str:
        token = f"{self.name}-refresh-{user}-{next(self._ids)}"
        self.refresh_tokens[token] = user
        return token


def _basic(auth: str | None) -> tuple[str | None, str | None]:
    if not auth or not auth.startswith("Basic "):
        return None, None
    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
    return user, password


def slack_token_endpoint(vendor: OAuthVendor, auth: str | None, form: dict[str, str]) -> tuple[int, Any]:
    client_id, secret = _basic(auth)
    if form.get("grant_type") != "refresh_token":
        return 200, {"ok": False, "error": "invalid_grant_type"}
    answer = vendor.grant(client_id, secret, form.get("refresh_token"))
    if answer.get("refused") == "client":
        return 200, {"ok": False, "error": "invalid_client_id" if client_id not in vendor.clients
                     else "bad_client_secret"}
    if answer.get("refused"):
        return 200, {"ok": False, "error": "invalid_refresh_token"}
    return 200, {"ok": True, "token_type": "user", **answer}


# The form-posting token endpoints (client id and secret as form fields): each refusal's answer, and what a
# success adds to the tokens.
_REFUSALS = {
    "hubspot": {
        "grant_type": (400, {"status": "BAD_GRANT_TYPE", "message": "grant_type must be refresh_token"}),
        "client": (400, {"status": "BAD_CLIENT_ID", "message": "missing or unknown client id"}),
        "refresh_token": (400, {"status": "BAD_REFRESH_TOKEN", "message": "missing or invalid refresh token"}),
    },
    "zendesk": {
        "grant_type": (400, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
        "client": (401, {"error": "invalid_client", "error_description": "Client authentication failed."}),
        "refresh_token": (400, {"error": "invalid_grant", "error_description": "The provided authorization grant "
                                "is invalid, expired, revoked, or was issued to another client."}),
    },
}
_GRANTED = {"hubspot": {"token_type": "bearer"},
            "zendesk": {"token_type": "bearer", "scope": "read write", "refresh_token_expires_in": 2592000}}


def form_token_endpoint(vendor: OAuthVendor, form: dict[str, str]) -> tuple[int, Any]:
    """HubSpot's ``POST /oauth/v1/token`` or Zendesk's ``POST /oauth/tokens``."""
    refusals = _REFUSALS[vendor.name]
    if form.get("grant_type") != "refresh_token":
        return refusals["grant_type"]
    answer = vendor.grant(form.get("client_id"), form.get("client_secret"), form.get("refresh_token"))
    if "refused" in answer:
        return refusals[answer["refused"]]
    return 200, {**_GRANTED[vendor.name], **answer}


def default_vendors() -> dict[str, OAuthVendor]:
    return {
        "slack": OAuthVendor("slack", 43200, rotates_refresh_token=True, revokes_previous_access_token=False),
        "hubspot": OAuthVendor("hubspot", 1800, rotates_refresh_token=False, revokes_previous_access_token=False),
        "zendesk": OAuthVendor("zendesk", 3600, rotates_refresh_token=True, revokes_previous_access_token=True),
    }
