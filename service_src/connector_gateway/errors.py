"""One error type for every refusal, so REST and MCP render the same status, code and message."""

from __future__ import annotations

BEARER_CHALLENGE = 'Bearer error="invalid_token"'


class GatewayError(Exception):
    """A refusal or failure with its HTTP status, a stable code and a message safe to show the caller.

    The message never holds credentials or raw arguments: it names the field, key or rule that failed.
    """

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message}


def bad_request(message: str, code: str = "bad_request") -> GatewayError:
    return GatewayError(400, code, message)


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, "unauthorized", message, headers={"www-authenticate": BEARER_CHALLENGE})


def forbidden(message: str) -> GatewayError:
    return GatewayError(403, "forbidden", message)


def unavailable(code: str, message: str) -> GatewayError:
    return GatewayError(503, code, message, headers={"retry-after": "5"})
