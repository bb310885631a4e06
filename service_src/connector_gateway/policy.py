"""The tool allowlist from the control plane, cached per (org, project).

A fresh entry serves for the TTL the control plane returned. After that the gateway asks again; if the
control plane fails (connection error, timeout, 429 or 5xx) the old entry keeps serving until TTL plus
POLICY_CACHE_GRACE_SECONDS, and then calls fail closed with 503. A document whose argument rules do not compile
is not used at all (502 ``policy_invalid``, logged with the rule's name): a rule the gateway cannot enforce must
not turn into a tool it allows.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import structlog
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from service_src.common.http import HttpSession
from service_src.common.tokens import ServiceToken
from service_src.connector_gateway.argument_rules import ArgumentRule, RuleCompileError
from service_src.connector_gateway.auth import Caller
from service_src.connector_gateway.errors import GatewayError, forbidden, unavailable

log = structlog.get_logger("cmp.connector_gateway.policy")


class RuleDocument(BaseModel):
    """One argument rule as the control plane sends it (argument_rules.py says what an expression sees)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    tool: str
    expression: str


class PolicyBinding(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    binding: str
    connector: str
    tools: tuple[str, ...] = ()
    # Each user connects their own account: credentials are read under the binding, per verified ``sub``.
    per_user: bool = False
    # Where a user connects their account for this binding (per_user only); the gateway adds ``user=<sub>``.
    connect_url: str | None = Field(None, pattern=r"^https?://[^\s]+$", max_length=2048)
    rules: tuple[RuleDocument, ...] = ()
    _compiled: tuple[ArgumentRule, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _connect_url_when_per_user(self) -> PolicyBinding:
        if self.per_user and not self.connect_url:
            raise ValueError("a per_user binding needs its connect_url")
        return self

    def model_post_init(self, _context: object) -> None:
        self._compiled = tuple(ArgumentRule.compile(r.name, r.tool, r.expression) for r in self.rules)

    @property
    def argument_rules(self) -> tuple[ArgumentRule, ...]:
        return self._compiled


class Policy(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    bindings: tuple[PolicyBinding, ...] = ()
    ttl_seconds: float = Field(60, ge=0, le=86400)

    def allowed_tools(self) -> frozenset[str]:
        return frozenset(tool for b in self.bindings for tool in b.tools if tool.split(".", 1)[0] == b.connector)

    def check(self, tool: str, connector: str, binding: str) -> PolicyBinding:
        """This binding's entry; 403 unless it exists for the caller, is of the tool's connector, and lists the
        tool."""
        for entry in self.bindings:
            if entry.binding != binding:
                continue
            if entry.connector != connector:
                raise forbidden(f"binding {binding!r} is a {entry.connector} binding, not {connector}")
            if tool not in entry.tools:
                raise forbidden(f"tool {tool!r} is not allowed on binding {binding!r}")
            return entry
        raise forbidden(f"binding {binding!r} is not allowed for this project")


@dataclass(slots=True)
class _Entry:
    policy: Policy
    fresh_until: float
    usable_until: float


class ControlPlaneUnavailable(Exception):
    """The control plane did not give an answer we can use (transient by the contract)."""


class PolicyCache:
    def __init__(
        self,
        http: HttpSession,
        control_plane_url: str,
        token: ServiceToken,
        *,
        timeout: float,
        grace_seconds: float,
        clock=time.monotonic,
    ) -> None:
        self._http = http
        self._url = control_plane_url.rstrip("/") + "/connectors/policy"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._grace = grace_seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def get(self, caller: Caller) -> Policy:
        key = (caller.org, caller.project)
        entry = self._entries.get(key)
        if entry is not None and self._clock() < entry.fresh_until:
            return entry.policy
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one refresh per tenant at a time; the others reuse its answer
            entry = self._entries.get(key)
            now = self._clock()
            if entry is not None and now < entry.fresh_until:
                return entry.policy
            try:
                policy = await self._fetch(caller)
            except ControlPlaneUnavailable as exc:
                if entry is not None and now < entry.usable_until:
                    return entry.policy
                raise unavailable(
                    "policy_unavailable", f"control plane unavailable and no usable cached policy ({exc})"
                ) from None
            now = self._clock()
            self._entries[key] = _Entry(policy, now + policy.ttl_seconds, now + policy.ttl_seconds + self._grace)
            return policy

    async def _fetch(self, caller: Caller) -> Policy:
        headers = {"authorization": f"Bearer {self._token.token()}"}
        params = {"org": caller.org, "project": caller.project}
        try:
            async with self._http.get().get(self._url, params=params, headers=headers, timeout=self._timeout,
                                            allow_redirects=False) as response:
                status, content = response.status, await response.read()
        except TimeoutError:
            raise ControlPlaneUnavailable("timeout") from None
        except aiohttp.ClientError as exc:
            raise ControlPlaneUnavailable(type(exc).__name__) from None
        if status == 429 or status >= 500:
            raise ControlPlaneUnavailable(f"HTTP {status}")
        if status != 200:
            # 4xx is permanent by the contract: the gateway itself is misconfigured (e.g. a wrong secret).
            raise GatewayError(502, "policy_rejected", f"control plane refused the policy request with HTTP {status}")
        try:
            return Policy.model_validate_json(content)
        except RuleCompileError as exc:
            log.error("policy_refused", org=caller.org, project=caller.project, reason=str(exc))
            raise GatewayError(502, "policy_invalid", f"the control plane's policy is not usable: {exc}") from None
        except ValidationError as exc:
            fields = ", ".join(".".join(map(str, e["loc"])) or "body" for e in exc.errors()[:3])
            raise ControlPlaneUnavailable(f"malformed policy document at {fields}") from None
