"""The one code path every tool call takes, from REST or MCP: auth, rate limit, schema, policy, credentials,
the upstream call, then one audit line and the metrics, whatever happened."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from service_src.common.tracing import Tracing
from service_src.connector_gateway.argument_rules import check_rules
from service_src.connector_gateway.audit import AuditLog, AuditRecord, arguments_hash
from service_src.connector_gateway.auth import Caller, CallerVerifier, authorization_field, bearer_token, check_segment
from service_src.connector_gateway.connectors import PAGERS, TOOLS, CallContext, ToolSpec
from service_src.connector_gateway.errors import GatewayError, unauthorized
from service_src.connector_gateway.metrics import GatewayMetrics
from service_src.connector_gateway.policy import Policy, PolicyBinding, PolicyCache
from service_src.connector_gateway.ratelimit import RateLimiter
from service_src.connector_gateway.result_limits import bound_result
from service_src.connector_gateway.settings import GatewaySettings
from service_src.connector_gateway.tracing import call_failed, call_succeeded, request_carrier, tool_call_span
from service_src.connector_gateway.user_connections import UserConnections
from service_src.connector_gateway.vault import CredentialStore

log = logging.getLogger("cmp.connector_gateway")


@dataclass(slots=True)
class ToolCall:
    """One request as it arrived; ``refusal`` carries a problem found while reading the body."""

    request_id: str
    transport: str  # "rest" | "mcp"
    tool: str
    headers: list[tuple[bytes, bytes]] | None = None  # the request's, for the one identity path
    caller: Caller | None = None
    binding: Any = None
    arguments: Any = None
    raw_body: bytes | None = None
    refusal: GatewayError | None = None
    trace_carrier: dict[str, str] | None = None  # MCP: the request's headers, for the caller's trace context


class ToolGateway:
    def __init__(
        self,
        settings: GatewaySettings,
        policies: PolicyCache,
        credentials: CredentialStore,
        audit: AuditLog,
        metrics: GatewayMetrics,
        verifier: CallerVerifier,
        limiter: RateLimiter,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.tracing = tracing or Tracing()
        self._upstream: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=settings.connector_timeout_seconds)
        self.policies = policies
        self.credentials = credentials
        self.users = UserConnections(credentials, ttl_seconds=settings.credential_cache_ttl_seconds)
        self.audit = audit
        self.metrics = metrics
        self.verifier = verifier
        self.limiter = limiter
        self.audiences = {"rest": settings.caller_audience, "mcp": settings.resource_url}
        self._base_urls = {
            "zendesk": settings.zendesk_base_url,
            "slack": settings.slack_base_url,
            "hubspot": settings.hubspot_base_url,
        }

    def upstream(self) -> aiohttp.ClientSession:
        """The process's keep-alive pool to the SaaS APIs, made on first use inside the running loop."""
        if self._upstream is None or self._upstream.closed:
            connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, keepalive_timeout=30, ttl_dns_cache=300)
            self._upstream = aiohttp.ClientSession(connector=connector, trust_env=False, raise_for_status=False,
                                                   trace_configs=self.tracing.aiohttp_trace_configs())
        return self._upstream

    async def aclose(self) -> None:
        if self._upstream is not None:
            await self._upstream.close()
        await self.limiter.aclose()

    async def identify(self, headers: list[tuple[bytes, bytes]], transport: str) -> Caller:
        """The one identity path of REST and MCP: exactly one Authorization field, a Bearer JWT verified for
        this transport's audience."""
        token = bearer_token(authorization_field(headers))
        return await self.verifier.verify(token, self.audiences[transport])

    async def allowed_tools(self, caller: Caller) -> frozenset[str]:
        """The tools this caller may list (every tool when enforcement is off)."""
        if not self.settings.policy_enforcement:
            return frozenset(TOOLS)
        policy: Policy = await self.policies.get(caller)
        return policy.allowed_tools() & TOOLS.keys()

    async def invoke(self, call: ToolCall) -> dict[str, Any]:
        """The call, audited; in a ``tools/call {tool}`` span when tracing is on and the tool is named."""
        if not self.tracing.enabled or not call.tool or not isinstance(call.tool, str):
            return await self._invoke(call)
        carrier = call.trace_carrier if call.trace_carrier is not None else request_carrier(call.headers)
        with tool_call_span(self.tracing, tool=call.tool[:128], transport=call.transport, request_id=call.request_id,
                            carrier=carrier, arguments=call.arguments) as span:
            try:
                result = await self._invoke(call)
            except GatewayError as exc:
                call_failed(span, exc.code, exc.status)
                raise
            call_succeeded(self.tracing, span, result)
            return result

    async def _invoke(self, call: ToolCall) -> dict[str, Any]:
        started = time.perf_counter()
        spec = TOOLS.get(call.tool)
        record = AuditRecord(
            request_id=call.request_id,
            transport=call.transport,
            tool=call.tool[:128] if isinstance(call.tool, str) and call.tool else None,
            binding=call.binding[:128] if isinstance(call.binding, str) else None,
            args_sha256=arguments_hash(call.arguments if call.raw_body is None else call.raw_body),
        )
        decision, status, error = "deny", 200, None
        try:
            caller = call.caller
            if caller is None and call.headers is not None:
                caller = await self.identify(call.headers, call.transport)
            record.caller = caller
            if caller is not None:
                await self.limiter.check(caller.org)
            if call.refusal is not None:
                raise call.refusal
            if caller is None:
                raise unauthorized("no verified caller")
            if spec is None:
                raise GatewayError(404, "unknown_tool", f"unknown tool {record.tool!r}; known tools: "
                                   + ", ".join(sorted(TOOLS)))
            binding = check_segment("binding", call.binding)
            arguments = spec.parse_arguments(call.arguments)
            entry = await self._authorize(caller, spec, binding, arguments)
            decision = "allow"
            result = await self._run(spec, caller, binding, arguments, entry)
            return bound_result(spec.name, result, self.settings.max_result_bytes, pager=PAGERS.get(spec.name),
                                arguments=arguments, idempotent=spec.idempotent)
        except GatewayError as exc:
            status, error = exc.status, exc.code
            if decision == "deny" and exc.status >= 500:
                decision = "error"
            raise
        except asyncio.CancelledError:
            status, error = 499, "client_closed"  # the caller went away mid-call
            raise
        except Exception as exc:
            # A bug or an unforeseen library error: 500 with a fixed message; the type and traceback go to the
            # service log (exception messages are not echoed to the caller).
            status, error, decision = 500, "internal_error", "error"
            log.error("tool call %s failed: %s", call.request_id, type(exc).__name__, exc_info=True)
            raise GatewayError(500, "internal_error", f"internal error (request {call.request_id})") from None
        finally:
            elapsed = time.perf_counter() - started
            self.audit.record(record, decision=decision, status=status, latency_ms=elapsed * 1000, error=error)
            self.metrics.observe(spec.name if spec else None, decision, status, elapsed, error)

    async def _authorize(self, caller: Caller, spec: ToolSpec, binding: str, arguments: Any) -> PolicyBinding | None:
        """The caller's policy entry for this binding once it allows the tool and every argument rule holds
        (None when enforcement is off); nothing here reads a credential."""
        if not self.settings.policy_enforcement:
            return None
        entry = (await self.policies.get(caller)).check(spec.name, spec.connector, binding)
        if entry.argument_rules:
            check_rules(entry.argument_rules, tool=spec.name, binding=binding, arguments=arguments, caller=caller)
        return entry

    async def _run(self, spec: ToolSpec, caller: Caller, binding: str, arguments: Any,
                   entry: PolicyBinding | None) -> dict[str, Any]:
        ctx = CallContext(
            client=self.upstream(),
            base_url=self._base_urls[spec.connector],
            timeout=self._timeout,
            max_retries=self.settings.connector_max_retries,
        )
        if entry is not None and entry.per_user:
            return await self.users.run(spec, ctx, caller, entry, arguments)
        secret = await self.credentials.get(caller.org, caller.project, binding)
        creds = spec.parse_credentials(binding, secret)
        return await spec.run(ctx, creds, arguments)
