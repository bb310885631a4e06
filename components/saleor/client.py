"""A GraphQL session for one provider operation: the shared staff token, bounded retries, Saleor's error forms.

A `SaleorSession` is opened inside each CRUD call and closed when it returns, so no HTTP client or SSL context
sits on the (pickled) provider or in module globals. The staff token is the process-wide one from
`components.saleor.auth.TOKENS`: a session logs in only when no fresh token exists. Every message it raises
names the operation's resource and has the staff password and tokens scrubbed.

Retries (tenacity):
- transport: connection errors and 429/5xx for reads and idempotent mutations; a create only when it provably
  did not run (no connection, or 500/502/503, which Saleor answers after rolling the transaction back);
  bounded by `maxAttempts` and `retryDeadlineSeconds`;
- LOGIN_ATTEMPT_DELAYED (Saleor's per-address login throttle, HTTP 200): the login is retried with jittered
  exponential backoff until `retryDeadlineSeconds`, then one line names the throttle and what to do. Refused
  credentials are never retried;
- an access token Saleor calls expired or invalid: the request is sent once more with a renewed token (Saleor
  checks the token before running anything, so even a create is safe to resend).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from components.saleor.auth import TOKENS, Grant, LoginRefused, grant_for
from components.saleor.documents import document
from components.saleor.errors import FieldError, SaleorError, SaleorUnavailable
from components.saleor.settings import SaleorSettings

if TYPE_CHECKING:  # imported where used: httpx and tenacity cost ~20 ms each of every program load otherwise
    import httpx
    from tenacity import RetryCallState

log = logging.getLogger("components.saleor")

_MUTATION_RETRY_STATUSES = frozenset({500, 502, 503})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_BACKOFF_CAP_SECONDS = 10.0
# Top-level exception codes Saleor answers (HTTP 200) when the Authorization token is expired or revoked.
_TOKEN_CODES = frozenset({"ExpiredSignatureError", "InvalidTokenError", "DecodeError", "InvalidSignatureError"})
# tokenCreate codes that no retry can fix; remembered so queued operations do not lengthen the lockout.
_REFUSED_CODES = frozenset(
    {"INVALID_CREDENTIALS", "INACTIVE", "ACCOUNT_NOT_CONFIRMED", "DISABLED_AUTHENTICATION_METHOD"}
)
_DELAYED = "LOGIN_ATTEMPT_DELAYED"


class _Transient(Exception):
    """One failed attempt; `retryable` is False when a repeat could do harm (a create that may have run)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def _is_delayed(exc: BaseException) -> bool:
    return isinstance(exc, SaleorError) and _DELAYED in exc.codes


class SaleorSession:
    """One conversation with Saleor's GraphQL API on behalf of one resource operation."""

    def __init__(self, settings: SaleorSettings, operation: str) -> None:
        self._settings = settings
        self._config = settings.config
        self.operation = operation  # e.g. "create SaleorWebhook 'OrderPaid' [ORDER_FULLY_PAID]": prefixes errors
        self._grant: Grant | None = None
        self._http: httpx.Client | None = None

    @property
    def _key(self) -> tuple[str, str]:
        return (self._config.api_url, self._config.staff_email)

    def __enter__(self) -> SaleorSession:
        import httpx

        # Plain-http API URLs use no TLS, so skip loading the CA bundle (~50 ms per operation).
        tls = self._config.api_url.startswith("https://")
        self._http = httpx.Client(timeout=self._config.tuning.timeout_seconds, follow_redirects=False, verify=tls)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.close()
        self._http = None
        self._grant = None

    # --- errors: one line, the resource named, no secret -----------------------------------------------
    def _scrub(self, text: str) -> str:
        grant = self._grant or TOKENS.cached(self._key)
        secrets = [self._settings.staff_password.get_secret_value()]
        if grant is not None:
            secrets += [grant.access, grant.refresh or ""]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def error(self, root: str, errors: list[FieldError], hint: str = "") -> SaleorError:
        return SaleorError(root, errors, hint, resource=self.operation)

    # --- the staff token ----------------------------------------------------------------------------------
    def authenticate(self, require: tuple[str, ...] = ("MANAGE_APPS",)) -> None:
        """Take the process's staff token (logging in only if none is fresh); refuse early without `require`."""
        try:
            self._grant = TOKENS.grant(
                self._key, self._settings.staff_password.get_secret_value(), self._login, self._refresh
            )
        except SaleorError as exc:
            if exc.resource == self.operation:
                raise
            # Another operation's login failed (or was refused) for this one too: report it for this resource.
            raise self.error(exc.operation, exc.errors, exc.hint) from None
        except SaleorUnavailable as exc:
            if exc.resource == self.operation:
                raise
            raise SaleorUnavailable(exc.detail, resource=self.operation) from None
        missing = [p for p in require if p not in self._grant.permissions]
        if missing:
            raise self.error(
                "tokenCreate",
                [
                    FieldError(
                        "permissions",
                        "PermissionDenied",
                        f"staff user {self._config.staff_email} lacks {', '.join(missing)}",
                    )
                ],
                f"give the staff user {', '.join(require)} (Saleor needs them to manage apps and webhooks)",
            )

    def _grant_from(self, root: str, data: dict[str, Any], refresh: str | None, received: float) -> Grant:
        token = data.get("token")
        if not token:
            raise self.error(root, [FieldError("token", "MISSING", "Saleor returned no token")])
        user = data.get("user") or {}
        permissions = frozenset(p["code"] for p in user.get("userPermissions") or [])
        return grant_for(token, refresh, permissions, received)

    def _login_once(self) -> Grant:
        received = time.monotonic()
        data = self.mutate(
            "token_create",
            "tokenCreate",
            {"email": self._config.staff_email, "password": self._settings.staff_password.get_secret_value()},
            idempotent=True,
            authenticated=False,
        )
        return self._grant_from("tokenCreate", data, data.get("refreshToken"), received)

    def _login(self) -> Grant:
        """tokenCreate, retried while Saleor's login throttle answers LOGIN_ATTEMPT_DELAYED."""
        from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

        cfg = self._config.tuning
        retrying = Retrying(
            retry=retry_if_exception(_is_delayed),
            stop=stop_before_delay(cfg.retry_deadline_seconds),
            wait=wait_exponential_jitter(
                multiplier=cfg.retry_backoff_seconds, max=_BACKOFF_CAP_SECONDS, jitter=cfg.retry_backoff_seconds
            ),
            before_sleep=lambda state: log.warning(
                "saleor tokenCreate: login throttled (LOGIN_ATTEMPT_DELAYED), retry %d in %.2fs",
                state.attempt_number,
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        started = time.monotonic()
        try:
            return retrying(self._login_once)
        except SaleorError as exc:
            if _is_delayed(exc):
                waited = time.monotonic() - started
                raise self.error(
                    "tokenCreate",
                    exc.errors,
                    f"Saleor's per-address login throttle refused {retrying.statistics.get('attempt_number', 1)} "
                    f"logins in {waited:.1f} s (saleor.tuning.retryDeadlineSeconds={cfg.retry_deadline_seconds:g}):"
                    " another login from this address was in progress, or failed logins delayed it; wait a minute "
                    "and run again, make sure no other process logs in from this address with a wrong password, or "
                    "raise saleor.tuning.retryDeadlineSeconds",
                ) from None
            if exc.codes & _REFUSED_CODES:
                raise LoginRefused(exc) from None
            raise

    def _refresh(self, refresh_token: str) -> Grant | None:
        """tokenRefresh (no login, so no throttle); None when Saleor refuses it and a login is needed."""
        received = time.monotonic()
        try:
            data = self.mutate(
                "token_refresh", "tokenRefresh", {"refreshToken": refresh_token}, idempotent=True, authenticated=False
            )
            return self._grant_from("tokenRefresh", data, refresh_token, received)
        except SaleorError as exc:
            log.info("saleor tokenRefresh refused (%s), logging in again", ", ".join(sorted(exc.codes)))
            return None

    # --- public API -------------------------------------------------------------------------------------
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
            raise self.error(root, [FieldError(root, "NO_DATA", "Saleor returned null for the mutation")])
        errors = payload.get("errors") or []
        if errors:
            raise self.error(
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
        body = {"query": document(name), "variables": variables}
        if not authenticated:
            return self._answer(root, self._post(root, body, {}, idempotent=idempotent))
        if self._grant is None:
            raise RuntimeError(f"{self.operation}: authenticate() must run before {root}")
        for renewed in (False, True):
            token = self._grant.access
            response = self._post(root, body, {"Authorization": f"Bearer {token}"}, idempotent=idempotent)
            codes = self._top_level_codes(response)
            if renewed or not codes & _TOKEN_CODES:
                return self._answer(root, response)
            # Expired or revoked before we expected: Saleor ran nothing; renew once and send again.
            log.info("saleor %s: staff token refused (%s), renewing it", root, ", ".join(sorted(codes)))
            TOKENS.invalidate(self._key, token)
            self.authenticate(require=())
        raise AssertionError("unreachable")

    def _answer(self, root: str, response: httpx.Response) -> Any:
        if response.status_code == 400:
            raise self.error(root, self._top_level_errors(response, root))
        if 300 <= response.status_code < 400:
            location = response.headers.get("location", "?")
            raise self.error(
                root,
                [FieldError("apiUrl", f"HTTP {response.status_code}", f"redirected to {location}")],
                "set saleor.apiUrl to the final GraphQL URL (Saleor's ends with /graphql/)",
            )
        if response.status_code != 200:
            raise self.error(
                root,
                [FieldError("apiUrl", f"HTTP {response.status_code}", self._scrub(response.text[:200]))],
                "check that saleor.apiUrl is Saleor's GraphQL endpoint and that Saleor is healthy",
            )
        try:
            parsed = response.json()
        except ValueError:
            raise self.error(
                root,
                [FieldError("apiUrl", "NOT_JSON", "the answer is not GraphQL JSON")],
                "check that saleor.apiUrl is Saleor's GraphQL endpoint",
            ) from None
        if parsed.get("errors"):
            raise self.error(root, self._top_level_errors(response, root))
        return (parsed.get("data") or {}).get(root)

    @staticmethod
    def _top_level_codes(response: httpx.Response) -> set[str]:
        if response.status_code != 200:
            return set()
        try:
            errors = response.json().get("errors") or []
        except (ValueError, AttributeError):
            return set()
        return {((e.get("extensions") or {}).get("exception") or {}).get("code", "") for e in errors}

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
        """POST with tenacity: retried only where a repeat cannot do harm (see the module docstring)."""
        import httpx
        from tenacity import (
            RetryError,
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            stop_before_delay,
            wait_exponential,
        )

        assert self._http is not None, "use SaleorSession as a context manager"
        cfg = self._config.tuning
        allowed = _RETRY_STATUSES if idempotent else _MUTATION_RETRY_STATUSES

        def attempt() -> httpx.Response:
            try:
                response = self._http.post(self._config.api_url, json=body, headers=headers)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                raise _Transient(type(exc).__name__, retryable=idempotent or not sent) from None
            if response.status_code in allowed:
                raise _Transient(f"HTTP {response.status_code}", retryable=True)
            return response

        def give_up(state: RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return isinstance(exc, _Transient) and not exc.retryable

        retrying = Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(cfg.max_attempts) | stop_before_delay(cfg.retry_deadline_seconds) | give_up,
            wait=wait_exponential(multiplier=cfg.retry_backoff_seconds, max=_BACKOFF_CAP_SECONDS),
            before_sleep=lambda state: log.warning(
                "saleor %s: %s, retry %d in %.2fs",
                root,
                state.outcome.exception().reason,
                state.attempt_number,
                state.upcoming_sleep,
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except (_Transient, RetryError) as exc:
            failure = exc if isinstance(exc, _Transient) else exc.last_attempt.exception()
            why = "giving up" if failure.retryable else "not retried: the mutation may have reached Saleor"
            raise SaleorUnavailable(
                f"Saleor {root} at {self._config.api_url}: {failure.reason} after "
                f"{retrying.statistics.get('attempt_number', 1)} attempt(s) ({why}; bounds: "
                f"saleor.tuning.maxAttempts={cfg.max_attempts}, "
                f"saleor.tuning.retryDeadlineSeconds={cfg.retry_deadline_seconds:g}); fix: check that Saleor "
                "is up and reachable from here, then run again",
                resource=self.operation,
            ) from None
