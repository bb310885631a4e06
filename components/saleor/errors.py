"""Errors the Saleor provider raises: one line naming the resource, Saleor's error code and the fix."""

from __future__ import annotations

from dataclasses import dataclass

# What to do about each code Saleor answers with (mutation errors[] codes and top-level exception codes).
FIXES: dict[str, str] = {
    "INVALID_CREDENTIALS": "check saleor.staffEmail and the password "
    "(`pulumi config set --secret cmp-platform:saleorStaffPassword <password>`); every failed login lengthens "
    "Saleor's per-address lockout, so fix it before running again",
    "INACTIVE": "reactivate the staff user in Saleor's dashboard (Staff Members)",
    "ACCOUNT_NOT_CONFIRMED": "confirm the staff user's e-mail address in Saleor",
    "DISABLED_AUTHENTICATION_METHOD": "enable password login for staff users in Saleor's site settings",
    "PermissionDenied": "give the staff user MANAGE_APPS and every permission the app gets (MANAGE_ORDERS)",
    "OUT_OF_SCOPE_PERMISSION": "give the staff user every permission the app gets (Saleor grants an app only "
    "permissions its creator holds)",
    "NOT_FOUND": "it was deleted in Saleor: run `pulumi refresh`, then `pulumi up` creates it again",
    "GraphQLError": "the document does not fit this Saleor's schema: run Saleor 3.20 to 3.23, or fix the field "
    "named above (`pulumi preview` checks it when the schemas are available)",
    "SYNTAX": "fix the subscription query (`pulumi preview` validates it against Saleor's schema)",
    "MISSING_SUBSCRIPTION": "the query must be one `subscription { event { ... } }` operation",
    "MISSING_EVENT": "give the webhook at least one async event",
    "INVALID_CUSTOM_HEADERS": "use at most 5 custom headers, named X-* or Authorization*",
    "INVALID": "fix the value of the field named above",
    "REQUIRED": "set the field named above",
    "DELETE_FAILED": "a delivery is in flight; run the operation again in a minute",
    "ExpiredSignatureError": "the staff token expired and a new one was refused; run the operation again",
    "LOGIN_ATTEMPT_DELAYED": "Saleor's per-address login throttle: wait a minute and run again; make sure no "
    "other process logs in from this address with a wrong password, or raise saleor.tuning.retryDeadlineSeconds",
}
GENERIC_FIX = "see Saleor's message; if it persists, check Saleor's logs for this request"


def one_line(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class FieldError:
    """One error as Saleor reports it (mutation errors[], a top-level error, or an HTTP 400 body)."""

    field: str
    code: str
    message: str

    def render(self) -> str:
        text = f"field {self.field!r} code {self.code}"
        return f"{text}: {self.message}" if self.message else text


class SaleorError(Exception):
    """Saleor refused an operation. `errors` keeps the structured form for callers that branch on codes."""

    def __init__(self, operation: str, errors: list[FieldError], hint: str = "", *, resource: str = "") -> None:
        self.operation = operation
        self.errors = errors
        self.resource = resource
        self.hint = hint or next((FIXES[e.code] for e in errors if e.code in FIXES), GENERIC_FIX)
        detail = "; ".join(e.render() for e in errors) or "no detail"
        prefix = f"{resource}: " if resource else ""
        super().__init__(one_line(f"{prefix}Saleor {operation} failed: {detail} (fix: {self.hint})"))

    @property
    def codes(self) -> set[str]:
        return {e.code for e in self.errors}


class SaleorUnavailable(Exception):
    """Saleor could not be reached (connection errors, 5xx) within the configured attempts and deadline."""

    def __init__(self, message: str, *, resource: str = "") -> None:
        self.detail = message
        self.resource = resource
        super().__init__(one_line(f"{resource}: {message}" if resource else message))
