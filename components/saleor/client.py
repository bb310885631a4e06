"""A GraphQL session for one provider operation: staff login, bounded retries, Saleor's error forms.

A `SaleorSession` is opened inside each CRUD call and closed when it returns, so no HTTP client, token or
SSL context ever sits on the (pickled) provider or in module globals. Every message it raises has the
staff password and access token scrubbed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from components.saleor.documents import document
from components.saleor.errors import FieldError, SaleorError, SaleorUnavailable
from components.saleor.settings import SaleorSettings

if TYPE_CHECKING:  # imported where used: httpx costs ~20 ms of every program load otherwise
    import httpx

log = logging.getLogger("components.saleor")

# Mutations are not idempotent (appCreate would make a second app): they are retried only when the request
# provably did not run to completion in Saleor (no connection, or a 5xx from a rolled-back transaction).
_MUTATION_RETRY_STATUSES = frozenset({500, 502, 503})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_CAP_SECONDS = 10.0


class SaleorSession:
    """One staff-authenticated conversation with Saleor's GraphQL API."""

    def __init__(self, settings: SaleorSettings, operation: str) -> None:
        self._settings = settings
        self._config = settings.config
        self.operation = operation
        self._token: str | None = None
        self.permissions: frozenset[str] = frozenset()
        self._http: httpx.Client | None = None

    def __enter__(self) -> SaleorSession:
        import httpx

        # Plain-http API URLs use no TLS, so skip loading the CA bundle (~50 ms per operation).
        tls = self._config.api_url.startswith("https://")
        self._http = httpx.Client(
            timeout=self._config.tuning.timeout_seconds, follow_redirects=False, verify=tls
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        self._token = None

    # --- secrets never leave in a message -------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in (self._settings.staff_password.get_secret_value(), self._token):
            if secret:
                text = text.replace(secret, "***")
        return text

    # --- public API -------------------------------------------------------------------------------------
    def login(self, require: tuple[str, ...] = ("MANAGE_APPS",)) -> None:
        """tokenCreate for this operation; refuse early if the staff user lacks a required permission."""
        data = self.mutate(
            "token_create",
            "tokenCreate",
            {"email": self._config.staff_email, "password": self._settings.staff_password.get_secret_value()},
            idempotent=True,
            authenticated=False,
        )
        token = data.get("token")
        if not token:
            raise SaleorError("tokenCreate", [FieldError("token", "MISSING", "Saleor returned no token")])
        self._token = token
        user = data.get("user") or {}
        self.permissions = frozenset(p["code"] for p in user.get("userPermissions") or [])
        missing = [p for p in require if p not in self.permissions]
        if missing:
            raise SaleorError(
                self.operation,
                [
                    FieldError(
                        "permissions",
                        "PermissionDenied",
                        f"staff user {self._config.staff_email} lacks {', '.join(missing)}; Saleor expects a "
                        f"staff user with {', '.join(require)} to manage apps and webhooks",
                    )
                ],
            )

    def query(self, name: str, root: str, variables: dict[str, Any]) -> Any:
        """Run a read-only document; returns data[root]."""
        return self._data(name, root, variables, idempotent=True, authenticated=True)

    def mutate(
        self,
        name: str,
        root: str,
        variables: dict[str, Any],
        *,
        idempotent: bool = False,
        authenticated: bool = True,
    ) -> dict[str, Any]:
        """Run a mutation; returns data[root] or raises SaleorError built from its errors[].

        `idempotent` mutations (update, delete, login) are retried like reads; creates are not.
        """
        payload = self._data(name, root, variables, idempotent=idempotent, authenticated=authenticated)
        if payload is None:
            raise SaleorError(root, [FieldError(root, "NO_DATA", "Saleor returned null for the mutation")])
        errors = payload.get("errors") or []
        if errors:
            raise SaleorError(
                root,
                [
                    FieldError(
                        e.get("field") or "(input)",
                        e.get("code") or "UNKNOWN",
                        self._scrub(e.get("message") or "")
                        + (f" [permissions: {', '.join(e['permissions'])}]" if e.get("permissions") else ""),
                    )
                    for e in errors
                ],
            )
        return payload

    # --- transport ---------------------------------------------------------------------------------------
    def _data(self, name: str, root: str, variables: dict[str, Any], *, idempotent: bool, authenticated: bool):
        headers = {"Content-Type": "application/json"}
        if authenticated:
            if self._token is None:
                raise RuntimeError(f"{self.operation}: login() must run before {root}")
            headers["Authorization"] = f"Bearer {self._token}"
        body = {"query": document(name), "variables": variables}
        response = self._post(root, body, headers, idempotent=idempotent)
        if response.status_code == 400:
            raise SaleorError(root, self._top_level_errors(response, root), "Saleor rejected the document")
        if 300 <= response.status_code < 400:
            location = response.headers.get("location", "?")
            raise SaleorError(
                root,
                [FieldError("apiUrl", f"HTTP {response.status_code}", f"redirected to {location}")],
                "set saleor.apiUrl to the final GraphQL URL (Saleor's ends with /graphql/)",
            )
        if response.status_code != 200:
            raise SaleorError(
                root,
                [FieldError("apiUrl", f"HTTP {response.status_code}", self._scrub(response.text[:200]))],
                "is saleor.apiUrl Saleor's GraphQL endpoint?",
            )
        try:
            parsed = response.json()
        except ValueError:
            raise SaleorError(
                root, [FieldError("apiUrl", "NOT_JSON", "the answer is not GraphQL JSON")]
            ) from None
        if parsed.get("errors"):
            raise SaleorError(root, self._top_level_errors(response, root))
        return (parsed.get("data") or {}).get(root)

    def _top_level_errors(self, response: httpx.Response, root: str) -> list[FieldError]:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            return [FieldError("(document)", f"HTTP {response.status_code}", self._scrub(response.text[:200]))]
        found = []
        for err in errors:
            ext = err.get("extensions") or {}
            code = (ext.get("exception") or {}).get("code") or ext.get("code") or "GraphQLError"
            path = ".".join(str(p) for p in err.get("path") or []) or root
            found.append(FieldError(path, code, self._scrub(str(err.get("message", "")))))
        return found or [FieldError(root, f"HTTP {response.status_code}", "no error detail")]

    def _post(self, root: str, body: dict, headers: dict, *, idempotent: bool) -> httpx.Response:
        import httpx

        assert self._http is not None, "use SaleorSession as a context manager"
        cfg = self._config.tuning
        deadline = time.monotonic() + cfg.retry_deadline_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._http.post(self._config.api_url, json=body, headers=headers)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                retryable = idempotent or not sent
                reason = type(exc).__name__
            else:
                status = response.status_code
                allowed = _RETRY_STATUSES if idempotent else _MUTATION_RETRY_STATUSES
                if status not in allowed:
                    return response
                retryable, reason = True, f"HTTP {status}"
            backoff = min(cfg.retry_backoff_seconds * 2 ** (attempt - 1), _BACKOFF_CAP_SECONDS)
            remaining = deadline - time.monotonic()
            if not retryable or attempt >= cfg.max_attempts or remaining <= backoff:
                why = "not retried: the mutation may have reached Saleor" if not retryable else "giving up"
                raise SaleorUnavailable(
                    f"Saleor {root} at {self._config.api_url}: {reason} after {attempt} attempt(s) ({why}; "
                    f"bounds: saleor.tuning.maxAttempts={cfg.max_attempts}, "
                    f"saleor.tuning.retryDeadlineSeconds={cfg.retry_deadline_seconds:g})"
                )
            log.warning("saleor %s: %s, retry %d in %.2fs", root, reason, attempt, backoff)
            time.sleep(backoff)
