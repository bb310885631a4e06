"""What every connector tool shares: its argument schema, its credentials schema, and one HTTP call helper.

The helper maps upstream answers the same way for every SaaS: 4xx -> the same 4xx with a sanitized message,
5xx -> 502, timeout -> 504. Only idempotent calls are retried (tenacity), at most CONNECTOR_MAX_RETRIES times, on
timeouts, connection errors and 5xx, with a doubling pause; each attempt has its own CONNECTOR_TIMEOUT_SECONDS.

The upstream client is aiohttp, the service's one HTTP client library (one keep-alive pool per process, see
``ToolGateway.upstream``); its CPU per call decides the gateway's throughput, and docs/connector-gateway.md has
the figures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import aiohttp
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from service_src.connector_gateway.errors import GatewayError

_SAFE_CODE = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")
RETRY_BACKOFF_S = 0.05  # first pause; each retry doubles it
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")]


class ToolArguments(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Credentials(BaseModel):
    model_config = ConfigDict(extra="ignore")


@dataclass(frozen=True, slots=True)
class CallContext:
    """Everything one call needs; built per call, the HTTP client is the app's shared one."""

    client: aiohttp.ClientSession
    base_url: str
    timeout: aiohttp.ClientTimeout
    max_retries: int


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """The parts of an upstream answer the connectors read (the body is read in full, bounded by the timeout)."""

    status_code: int
    headers: dict[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)


def validation_message(exc: ValidationError, prefix: str) -> str:
    """Field names and rules only: pydantic's input values are the caller's data."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def sanitized(value: object) -> str | None:
    """An upstream error code worth repeating (short, plain), or None."""
    if isinstance(value, str) and _SAFE_CODE.fullmatch(value):
        return value
    return None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str  # "<connector>.<action>", as the control plane's policy lists it
    connector: str
    description: str
    arguments: type[ToolArguments]
    credentials: type[Credentials]
    idempotent: bool
    run: Callable[[CallContext, Any, Any], Awaitable[dict[str, Any]]]

    def parse_arguments(self, raw: object) -> ToolArguments:
        if not isinstance(raw, dict):
            raise GatewayError(400, "invalid_arguments", "arguments must be a JSON object")
        try:
            return self.arguments.model_validate(raw)
        except ValidationError as exc:
            raise GatewayError(400, "invalid_arguments", validation_message(exc, "arguments")) from None

    def parse_credentials(self, binding: str, data: dict[str, str]) -> Credentials:
        try:
            return self.credentials.model_validate(data)
        except ValidationError as exc:
            keys = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
            raise GatewayError(
                424, "credentials_invalid", f"credentials for binding {binding!r} lack or break keys: {keys}"
            ) from None

    def input_schema(self) -> dict[str, Any]:
        """The MCP inputSchema: the same {binding, arguments} shape as the REST body."""
        return {
            "type": "object",
            "properties": {
                "binding": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"},
                "arguments": self.arguments.model_json_schema(),
            },
            "required": ["binding", "arguments"],
            "additionalProperties": False,
        }


def upstream_error(connector: str, response: UpstreamResponse, code: object = None) -> GatewayError:
    status = response.status_code
    detail = sanitized(code)
    suffix = f": {detail}" if detail else ""
    if status >= 500:
        return GatewayError(502, "upstream_error", f"{connector} answered HTTP {status}{suffix}")
    headers = {}
    retry = response.headers.get("Retry-After") or response.headers.get("retry-after") or ""
    if status == 429 and retry.isdigit():
        headers["retry-after"] = retry
    return GatewayError(status, "upstream_rejected", f"{connector} refused the call (HTTP {status}){suffix}",
                        headers=headers)


def upstream_error_from_json(connector: str, response: UpstreamResponse, code_key: str) -> GatewayError:
    """upstream_error with the error code the SaaS puts under ``code_key`` in its JSON body."""
    try:
        code = response.json().get(code_key)
    except (ValueError, AttributeError):
        code = None
    return upstream_error(connector, response, code)


async def send(
    ctx: CallContext,
    connector: str,
    method: str,
    url: str,
    *,
    idempotent: bool,
    headers: dict[str, str],
    payload: Any = None,
) -> UpstreamResponse:
    """One upstream call with a timeout; retried on timeouts, connection errors and 5xx only if idempotent."""
    body = None
    if payload is not None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"content-type": "application/json; charset=utf-8", **headers}

    async def attempt() -> UpstreamResponse:
        async with ctx.client.request(method, url, data=body, headers=headers, timeout=ctx.timeout,
                                      allow_redirects=False) as response:
            return UpstreamResponse(response.status, dict(response.headers), await response.read())

    try:
        if not idempotent or ctx.max_retries == 0:
            return await attempt()  # never retried: no retry policy to run
        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + ctx.max_retries),
            wait=wait_exponential(multiplier=RETRY_BACKOFF_S),
            retry=retry_if_exception_type((TimeoutError, aiohttp.ClientError)) | retry_if_result(_server_error),
            retry_error_callback=_last_outcome,  # the last 5xx is returned, the last exception raised as it was
        )
        return await retrying(attempt)
    except TimeoutError:
        raise GatewayError(504, "upstream_timeout", f"{connector} did not answer in {ctx.timeout.total:g}s") from None
    except aiohttp.ClientError as exc:
        raise GatewayError(502, "upstream_unreachable", f"{connector} unreachable ({type(exc).__name__})") from None


def _server_error(response: UpstreamResponse) -> bool:
    return response.status_code >= 500


def _last_outcome(state: RetryCallState) -> UpstreamResponse:
    return state.outcome.result()


def json_body(connector: str, response: UpstreamResponse) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise GatewayError(502, "upstream_error", f"{connector} answered with a body that is not JSON") from None
    if not isinstance(body, dict):
        raise GatewayError(502, "upstream_error", f"{connector} answered with JSON that is not an object")
    return body
