"""Pulumi dynamic providers for a Saleor app and its webhooks.

The provider objects are dill-pickled into state, so they hold nothing but what `configure()` sets in the
provider host (settings read from stack config). Every CRUD call opens its own `SaleorSession` (an httpx
client) and closes it before returning; the staff token is the one the whole host process shares
(components.saleor.auth), so the engine's concurrent calls make one login, not one each.
"""

from __future__ import annotations

import logging
from typing import Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from components.saleor import state
from components.saleor.checks import app_failures, webhook_failures
from components.saleor.client import SaleorSession
from components.saleor.errors import FieldError, SaleorError
from components.saleor.read_cache import SNAPSHOTS
from components.saleor.schema import SUPPORTED_VERSIONS, Schemas, schemas_for
from components.saleor.settings import CONFIG_KEY, PASSWORD_KEY, SaleorSettings, SettingsError, settings_from

log = logging.getLogger("components.saleor")


class _SaleorProvider(ResourceProvider):
    """Shared plumbing: settings from configure(), one session per operation, the per-app read snapshot."""

    identity: tuple[str, ...] = ()  # a change replaces the resource
    mutable: tuple[str, ...] = ()  # a change is one update mutation

    def __init__(self) -> None:
        super().__init__()
        self._settings: SaleorSettings | None = None
        self._settings_error: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Settings (with the staff password) exist only in the provider host; never pickle them.
        return {"_settings": None, "_settings_error": None}

    def configure(self, req: ConfigureRequest) -> None:
        raw = {CONFIG_KEY: req.config.get(CONFIG_KEY), PASSWORD_KEY: req.config.get(PASSWORD_KEY)}
        try:
            self._settings = settings_from(raw)
            self._settings_error = None
        except SettingsError as exc:
            # check() needs no credentials; CRUD calls raise this message.
            self._settings, self._settings_error = None, str(exc)

    @property
    def settings(self) -> SaleorSettings:
        if self._settings is None:
            if self._settings_error is None:
                self.configure(ConfigureRequest(config=_EmptyConfig()))
            if self._settings is None:
                raise SettingsError(self._settings_error or "Saleor provider settings are missing")
        return self._settings

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        olds, news = state.plain(olds), state.plain(news)
        replaces = state.changed_fields(olds, news, self.identity)
        changes = replaces + state.changed_fields(olds, news, self.mutable)
        return DiffResult(changes=bool(changes), replaces=replaces, delete_before_replace=False)

    def _schemas(self) -> Schemas:
        """Schema files for the configured versions, else the configured Saleor's own schema, else none."""
        if self._settings is None:
            return schemas_for(SUPPORTED_VERSIONS)
        cfg = self._settings.config
        # A short timeout: an unreachable Saleor only means the check is skipped, and preview should not wait.
        return schemas_for(self._settings.versions, cfg.api_url, min(cfg.tuning.timeout_seconds, 5.0))

    def _session(self, operation: str) -> SaleorSession:
        return SaleorSession(self.settings, operation)

    def _snapshot(self, app_id: str, operation: str) -> dict[str, Any] | None:
        """The app and its webhooks from one query (shared by all resources of the app for a short while)."""
        settings = self.settings

        def fetch() -> dict[str, Any] | None:
            with SaleorSession(settings, operation) as session:
                session.authenticate()
                return session.query("app_with_webhooks", "app", {"id": app_id})

        key = (settings.config.api_url, app_id)
        return SNAPSHOTS.get(key, settings.config.tuning.read_cache_seconds, fetch)

    def _forget(self, app_id: str) -> None:
        SNAPSHOTS.invalidate((self.settings.config.api_url, app_id))


class _EmptyConfig:
    """Stands in for stack config when the host never called Configure (env fallbacks apply)."""

    def get(self, _key: str) -> None:
        return None


def _not_found(exc: SaleorError) -> bool:
    return "NOT_FOUND" in exc.codes


def _app(props: dict[str, Any], id_: str = "") -> str:
    """How errors name an app: `SaleorApp 'CMP Provisioner' (QXBwOjE=)`."""
    return f"SaleorApp {props.get('name')!r}" + (f" ({id_})" if id_ else "")


def _webhook(props: dict[str, Any], id_: str = "") -> str:
    events = ",".join(props.get("async_events") or []) if isinstance(props.get("async_events"), list) else ""
    return f"SaleorWebhook {props.get('name')!r}" + (f" [{events}]" if events else "") + (f" ({id_})" if id_ else "")


class SaleorAppProvider(_SaleorProvider):
    """A Saleor app (LOCAL type) with its permissions; the auth token is shown once, at create."""

    identity, mutable = state.APP_IDENTITY, state.APP_MUTABLE

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = state.plain(news)
        failures = app_failures(news, self._schemas())
        inputs = dict(news)
        if isinstance(inputs.get("permissions"), list):
            inputs["permissions"] = sorted(set(inputs["permissions"]))
        return CheckResult(inputs, [CheckFailure(p, r) for p, r in failures])

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = state.plain(props)
        app_input = {"name": props["name"], "permissions": sorted(set(props.get("permissions") or []))}
        if props.get("identifier"):
            app_input["identifier"] = props["identifier"]
        with self._session(f"create {_app(props)}") as session:
            session.authenticate()
            result = session.mutate("app_create", "appCreate", {"input": app_input})
            app, token = result.get("app"), result.get("authToken")
            try:
                if not app or not token:
                    raise session.error(
                        "appCreate",
                        [FieldError("authToken", "MISSING", "Saleor returned no app or auth token")],
                        "the half-made app was deleted; run `pulumi up` again",
                    )
                outs = state.app_outputs(app, token)
            except Exception:
                if app and app.get("id"):
                    self._delete_app(session, app["id"])  # never leave an app nobody tracks
                raise
        return CreateResult(app["id"], outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = state.plain(props)
        app = self._snapshot(id_, f"read {_app(props, id_)} and its webhooks")
        if app is None:
            return ReadResult("", {})
        return ReadResult(id_, state.app_outputs(app, props.get("auth_token")))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = state.plain(olds), state.plain(news)
        app_input = {"name": news["name"], "permissions": sorted(set(news.get("permissions") or []))}
        with self._session(f"update {_app(news, id_)}") as session:
            session.authenticate()
            result = session.mutate("app_update", "appUpdate", {"id": id_, "input": app_input}, idempotent=True)
        self._forget(id_)
        return UpdateResult(state.app_outputs(result["app"], olds.get("auth_token")))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        with self._session(f"delete {_app(state.plain(props), id_)}") as session:
            session.authenticate()
            self._delete_app(session, id_)
        self._forget(id_)

    @staticmethod
    def _delete_app(session: SaleorSession, app_id: str) -> None:
        try:
            session.mutate("app_delete", "appDelete", {"id": app_id}, idempotent=True)
        except SaleorError as exc:
            if not _not_found(exc):  # already gone counts as deleted
                raise


class SaleorWebhookProvider(_SaleorProvider):
    """One webhook of an app: changing URL, events, query, active flag or headers is one webhookUpdate."""

    identity, mutable = state.WEBHOOK_IDENTITY, state.WEBHOOK_MUTABLE

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        news = state.plain(news)
        failures = webhook_failures(news, self._schemas())
        inputs = dict(news)
        inputs.setdefault("is_active", True)
        if inputs.get("custom_headers") is None:
            inputs["custom_headers"] = {}
        if isinstance(inputs.get("async_events"), list):
            inputs["async_events"] = sorted(set(inputs["async_events"]))
        return CheckResult(inputs, [CheckFailure(p, r) for p, r in failures])

    def create(self, props: dict[str, Any]) -> CreateResult:
        props = state.plain(props)
        webhook_input = {"app": props["app_id"], **state.webhook_input(props, state.WEBHOOK_MUTABLE)}
        with self._session(f"create {_webhook(props)}") as session:
            session.authenticate()
            result = session.mutate("webhook_create", "webhookCreate", {"input": webhook_input})
            webhook = result.get("webhook")
            try:
                if not webhook or not webhook.get("id"):
                    raise session.error(
                        "webhookCreate",
                        [FieldError("webhook", "MISSING", "Saleor returned no webhook")],
                        "run `pulumi up` again",
                    )
                outs = state.webhook_outputs(webhook, props["app_id"])
            except Exception:
                if webhook and webhook.get("id"):
                    self._delete_webhook(session, webhook["id"])
                raise
        self._forget(props["app_id"])
        return CreateResult(webhook["id"], outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        props = state.plain(props)
        if not props.get("app_id"):
            raise SettingsError(
                f"SaleorWebhook {id_}: read needs the app_id output in state (`pulumi import` is not supported)"
            )
        app = self._snapshot(props["app_id"], f"read {_webhook(props, id_)} with its app")
        webhook = next((w for w in (app or {}).get("webhooks") or [] if w.get("id") == id_), None)
        if webhook is None:  # the webhook or its whole app was deleted out of band
            return ReadResult("", {})
        return ReadResult(id_, state.webhook_outputs(webhook, props["app_id"]))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        olds, news = state.plain(olds), state.plain(news)
        fields = state.changed_fields(olds, news, state.WEBHOOK_MUTABLE)
        if not fields:
            return UpdateResult(self._outputs_from_props(news))
        with self._session(f"update {_webhook(news, id_)}") as session:
            session.authenticate()
            result = session.mutate(
                "webhook_update",
                "webhookUpdate",
                {"id": id_, "input": state.webhook_input(news, fields)},
                idempotent=True,
            )
        self._forget(news["app_id"])
        return UpdateResult(state.webhook_outputs(result["webhook"], news["app_id"]))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        props = state.plain(props)
        with self._session(f"delete {_webhook(props, id_)}") as session:
            session.authenticate()
            self._delete_webhook(session, id_)
        if props.get("app_id"):
            self._forget(props["app_id"])

    @staticmethod
    def _outputs_from_props(props: dict[str, Any]) -> dict[str, Any]:
        outs = {f: state.canonical(f, props.get(f)) for f in state.WEBHOOK_MUTABLE if f != "query"}
        outs["query"] = props.get("query")
        outs["app_id"] = props["app_id"]
        return outs

    def _delete_webhook(self, session: SaleorSession, webhook_id: str) -> None:
        """webhookDelete; already gone counts as deleted, DELETE_FAILED (delivery in flight) is retried."""
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_incrementing  # here: ~20 ms at load

        cfg = self.settings.config.tuning
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, SaleorError) and "DELETE_FAILED" in exc.codes),
            stop=stop_after_attempt(cfg.delete_retry_attempts),
            wait=wait_incrementing(start=cfg.delete_retry_backoff_seconds, increment=cfg.delete_retry_backoff_seconds),
            before_sleep=lambda st: log.warning(
                "saleor webhookDelete: delivery in flight, retry %d in %.1fs", st.attempt_number, st.upcoming_sleep
            ),
            reraise=True,
        )
        try:
            retrying(session.mutate, "webhook_delete", "webhookDelete", {"id": webhook_id}, idempotent=True)
        except SaleorError as exc:
            if _not_found(exc):
                return
            if "DELETE_FAILED" in exc.codes:
                raise session.error(
                    exc.operation,
                    exc.errors,
                    f"still failing after {cfg.delete_retry_attempts} attempts: a delivery is in flight and the "
                    "webhook stays deactivated; run the operation again in a minute (bound: "
                    "saleor.tuning.deleteRetryAttempts)",
                ) from None
            raise
