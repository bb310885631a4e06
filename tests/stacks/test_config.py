"""Stack config: defaults from the reference, one-line errors naming key + value + rule, secrets kept secret."""

from __future__ import annotations

import copy
import json

import pulumi
import pytest
import yaml

from infra.config import ConfigError
from infra.recording import run_main, run_program
from stacks.config import (
    OPERATOR_SECRET_KEYS,
    SECRET_KEYS,
    StackConfig,
    load_stack_config,
    parse_stack_config,
    stack_config_from_bag,
)
from tests.components.helpers import ROOT, base_config, engine_config, stack_file

SECRETS = {key: f"value-of-{key}" for key in SECRET_KEYS}
MINIMAL = {
    "environment": "dev",
    "controlPlaneUrl": "http://cmp-control-plane.cmp.svc.cluster.local:8000",
    "saleor": {"apiUrl": "https://saleor.example.com/graphql/", "staffEmail": "ops@example.com"},
}


def parse(**overrides):
    raw = copy.deepcopy(MINIMAL)
    raw.update(overrides)
    return parse_stack_config(raw, SECRETS)


def error_of(raw=None, secrets=None, **overrides) -> str:
    raw = copy.deepcopy(MINIMAL if raw is None else raw)
    raw.update(overrides)
    with pytest.raises(ConfigError) as info:
        parse_stack_config(raw, SECRETS if secrets is None else secrets)
    message = str(info.value)
    assert all(line.startswith("config error: ") for line in message.splitlines()), message  # one line each
    return message


def test_defaults_reproduce_the_reference():
    cfg = parse()
    assert cfg.namespace == "cmp" and cfg.cluster_secret_store == "vault-backend"
    assert cfg.connector_gateway.replicas == 2 and cfg.provisioner.replicas == 2
    billing = cfg.gateway_billing
    assert (billing.billing_enabled, billing.authorize_path, billing.settle_path) == (
        True, "/billing/authorize", "/billing/settle")
    assert (billing.retries, billing.retry_backoff_seconds, billing.timeout_seconds) == (3, 1, 5)
    assert (billing.entitlements_cache_ttl_seconds, billing.entitlements_path) == (60, "/instances/{id}/entitlements")
    assert (billing.rate_limit_enabled, billing.rate_limit_requests_per_minute) == (True, 60)
    rag = cfg.ragflow
    assert (rag.image, rag.tag, rag.node_arch, rag.image_ref) == (
        "infiniflow/ragflow", "v0.15.1", "amd64", "infiniflow/ragflow:v0.15.1")
    assert cfg.vault.secret_mount == "secret" and cfg.vault.kv_mount == "kv"
    assert not cfg.protected and not cfg.digests_required


def test_operator_secrets_come_from_the_vault_path_table():
    assert set(OPERATOR_SECRET_KEYS) == {"provisionerDatabaseUrl", "langflowApiKey", "openaiApiKey"}
    assert SECRET_KEYS[0] == "saleorStaffPassword"


@pytest.mark.parametrize(("overrides", "key", "value", "rule"), [
    ({"gatewayBilling": {"retries": 11}}, "cmp-platform:gatewayBilling.retries", "11", "less than or equal to 10"),
    ({"gatewayBilling": {"retries": -1}}, "cmp-platform:gatewayBilling.retries", "-1", "greater than or equal to 0"),
    ({"gatewayBilling": {"settlePath": "billing/settle"}}, "cmp-platform:gatewayBilling.settlePath",
     "'billing/settle'", "must start with '/'"),
    ({"gatewayBilling": {"entitlementsPath": "/instances/entitlements"}},
     "cmp-platform:gatewayBilling.entitlementsPath", "'/instances/entitlements'", "{id}"),
    ({"gatewayBilling": {"timeoutSeconds": 0}}, "cmp-platform:gatewayBilling.timeoutSeconds", "0", "greater than 0"),
    ({"gatewayBilling": {"retryBackoffSeconds": 0}}, "cmp-platform:gatewayBilling.retryBackoffSeconds", "0",
     "greater than 0"),
    ({"gatewayBilling": {"entitlementsCacheTtlSeconds": 0}},
     "cmp-platform:gatewayBilling.entitlementsCacheTtlSeconds", "0", "greater than 0"),
    ({"gatewayBilling": {"rateLimitRequestsPerMinute": 0}},
     "cmp-platform:gatewayBilling.rateLimitRequestsPerMinute", "0", "greater than 0"),
    ({"connectorGateway": {"replicas": "two"}}, "cmp-platform:connectorGateway.replicas", "'two'", "integer"),
    ({"connectorGateway": {"image": "ghcr.io/x/gw:latest"}}, "cmp-platform:connectorGateway.image",
     "'ghcr.io/x/gw:latest'", "latest"),
    ({"provisioner": {"image": "ghcr.io/x/prov"}}, "cmp-platform:provisioner.image", "'ghcr.io/x/prov'",
     "tag or a @sha256 digest"),
    ({"connectorGateway": {"ingressFrom": [{"namespace": "Bad_NS"}]}},
     "cmp-platform:connectorGateway.ingressFrom[0].namespace", "'Bad_NS'", "DNS-1123"),
    ({"namespace": "CMP"}, "cmp-platform:namespace", "'CMP'", "DNS-1123"),
    ({"controlPlaneUrl": "cp:8000"}, "cmp-platform:controlPlaneUrl", "'cp:8000'", "http"),
    ({"kubernetesVersion": "1.40"}, "cmp-platform:kubernetesVersion", "'1.40'", "1.25 to 1.37"),
    ({"environment": "qa"}, "cmp-platform:environment", "'qa'", "'dev', 'staging' or 'prod'"),
    ({"ragflow": {"nodeArch": "x86"}}, "cmp-platform:ragflow.nodeArch", "'x86'", "amd64"),
    ({"ragflow": {"tag": "dev-slim-arm64"}}, "cmp-platform:ragflow.platforms", "<unset>", "registryPreflight"),
    ({"ragflow": {"platforms": ["amd64"]}}, "cmp-platform:ragflow.platforms", '["amd64"]', "os/arch"),
    ({"provisioner": {"resources": {"requests": {"cpu": "2", "memory": "1Gi"},
                                    "limits": {"cpu": "1", "memory": "1Gi"}}}},
     "cmp-platform:provisioner.resources.limits.cpu", "'1'", ">= requests.cpu (2)"),
    ({"connectorGateway": {"resources": {"requests": {"cpu": "lots", "memory": "1Gi"},
                                         "limits": {"cpu": "1", "memory": "1Gi"}}}},
     "cmp-platform:connectorGateway.resources.requests.cpu", "'lots'", "CPU quantity"),
    ({"gatewayBiling": {"retries": 3}}, "cmp-platform:gatewayBiling", '{"retries": 3}', "unknown key"),
    ({"gatewayBilling": {"retrys": 3}}, "cmp-platform:gatewayBilling.retrys", "3", "unknown key"),
    ({"saleor": {"apiUrl": "https://saleor.example.com/graphql/"}}, "cmp-platform:saleor.staffEmail", "<unset>",
     "required"),
])
def test_bad_values_give_one_line_naming_key_value_and_rule(overrides, key, value, rule):
    message = error_of(**overrides)
    assert message.startswith(f"config error: {key} = {value}: "), message
    assert rule in message, message


def test_missing_required_key():
    raw = {k: v for k, v in MINIMAL.items() if k != "controlPlaneUrl"}
    assert error_of(raw) == "config error: cmp-platform:controlPlaneUrl = <unset>: required key is missing"


def test_secrets_must_be_set_and_never_plain_text():
    missing = {k: v for k, v in SECRETS.items() if k != "openaiApiKey"}
    message = error_of(secrets=missing)
    assert message.startswith("config error: cmp-platform:openaiApiKey = <unset>:")
    assert "pulumi config set --secret openaiApiKey" in message
    message = error_of(saleorStaffPassword="hunter2")
    assert "hunter2" not in message and "[secret]" in message and "--secret" in message


def test_prod_requires_digests_and_protection():
    digest = "sha256:" + "a" * 64
    message = error_of(environment="prod")
    assert message.startswith("config error: cmp-platform:connectorGateway.image = "
                              "'ghcr.io/gsvdev/cmp-connector-gateway:0.1.0': prod requires")
    pinned = {"connectorGateway": {"image": f"ghcr.io/x/gw:1@{digest}"},
              "provisioner": {"image": f"ghcr.io/x/prov:1@{digest}"}}
    assert "cmp-platform:ragflow.digest = <unset>" in error_of(environment="prod", **pinned)
    pinned["ragflow"] = {"digest": digest, "platforms": ["linux/amd64"]}
    cfg = parse(environment="prod", **pinned)
    assert cfg.protected and cfg.digests_required
    assert cfg.ragflow.image_ref == f"infiniflow/ragflow:v0.15.1@{digest}"
    assert "cmp-platform:protect = false: prod protects" in error_of(environment="prod", protect=False, **pinned)
    # Staging may opt in to digests.
    assert "staging requires" in error_of(environment="staging", requireImageDigest=True)


def test_zero_and_false_are_kept_not_defaulted():
    cfg = parse(gatewayBilling={"retries": 0, "billingEnabled": False},
                connectorGateway={"credentialCacheTtlSeconds": 0, "policyEnforcement": False})
    assert cfg.gateway_billing.retries == 0 and cfg.gateway_billing.billing_enabled is False
    assert cfg.connector_gateway.credential_cache_ttl_seconds == 0
    assert cfg.connector_gateway.policy_enforcement is False


def test_secret_values_never_show_in_repr():
    cfg = parse()
    assert "value-of-saleorStaffPassword" not in repr(cfg)
    assert "value-of" not in repr(cfg.secrets)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_parse(stack):
    raw = {k: v for k, v in stack_file(stack).items() if k not in SECRET_KEYS}
    cfg = parse_stack_config(raw, SECRETS)
    assert cfg.environment == stack


def test_project_file_declares_the_models_keys_and_leaves_defaults_to_them():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "cmp-platform" and "main" not in project  # the program is the root __main__.py
    assert (ROOT / "__main__.py").is_file()
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    fields = {f.alias: f for f in StackConfig.model_fields.values()}
    for key, spec in project["config"].items():
        assert "default" not in spec, f"Pulumi.yaml repeats a default of {key}: defaults live in stacks/config.py"
        if key in SECRET_KEYS:
            assert spec.get("secret") is True, key
            continue
        assert key in fields, f"Pulumi.yaml declares {key}, stacks/config.py does not"
    assert set(SECRET_KEYS) <= set(project["config"])


# --- under Pulumi: load_stack_config through the recording engine --------------------------------------------


def _load(config: dict, secret_keys: set[str]) -> dict:
    seen: dict = {}

    async def program():
        cfg = load_stack_config()
        seen["cfg"] = cfg
        out = cfg.secret("saleorStaffPassword")
        seen["is_secret"] = await out.is_secret()
        seen["value"] = await out.future()
        pulumi.export("password", out)

    seen["recording"] = run_program(program, stack="dev", config=config, secret_keys=secret_keys)
    return seen


def test_load_stack_config_reads_structured_values_and_keeps_secrets_secret():
    config = {**MINIMAL, "gatewayBilling": {"retries": 4}, "debug": "true", **SECRETS}
    seen = _load(config, set(SECRETS))
    cfg = seen["cfg"]
    assert cfg.gateway_billing.retries == 4 and cfg.debug is True
    assert seen["is_secret"] is True and seen["value"] == "value-of-saleorStaffPassword"
    assert seen["recording"].outputs["password"] == "[secret]"


def test_load_stack_config_refuses_a_plain_text_secret():
    config = {**MINIMAL, **SECRETS}
    with pytest.raises(ConfigError, match=r"cmp-platform:saleorStaffPassword = \[secret\]: is a secret: set it with "):
        _load(config, set(SECRETS) - {"saleorStaffPassword"})


def test_load_stack_config_malformed_structured_value():
    config = {**MINIMAL, **SECRETS, "gatewayBilling": "{retries: 3"}
    with pytest.raises(ConfigError, match=r"cmp-platform:gatewayBilling = '\{retries: 3': must be a YAML object"):
        _load(config, set(SECRETS))


@pytest.mark.parametrize(("dsn", "rule"), [
    ("mysql://cmp:pw@db/cmp", "DATABASE_URL must be a postgresql+psycopg://... DSN, not mysql://"),
    ("postgres://cmp:pw@db:5432/cmp", "DATABASE_URL must be a postgresql+psycopg://... DSN, not postgres://"),
    ("sqlite:////tmp/cmp-provisioner.db", "DATABASE_URL must be a postgresql+psycopg://... DSN, not sqlite://"),
])
def test_an_operator_dsn_the_provisioner_refuses_is_a_config_error_without_its_value(dsn, rule):
    config = {**MINIMAL, **SECRETS, "provisionerDatabaseUrl": dsn}
    with pytest.raises(ConfigError) as caught:
        _load(config, set(SECRETS) | {"provisionerDatabaseUrl"})
    assert str(caught.value) == (f"config error: cmp-platform:provisionerDatabaseUrl = [secret]: {rule} "
                                 "(Pulumi.dev.yaml)")
    assert "pw@db" not in str(caught.value)


def test_a_postgresql_dsn_passes():
    config = {**MINIMAL, **SECRETS, "provisionerDatabaseUrl": "postgresql+psycopg://cmp:pw@db:5432/cmp"}
    assert _load(config, set(SECRETS) | {"provisionerDatabaseUrl"})["cfg"].environment == "dev"


def test_a_nested_key_set_without_path_names_the_command_that_sets_it():
    """`pulumi config set cmp-platform:ragflow.tag v0.16` (no --path) writes a top-level key `ragflow.tag`."""
    message = error_of(**{"ragflow.tag": "v0.16", "gatewayBilling": {"retries": 11}})
    assert message.splitlines() == [
        "config error: cmp-platform:ragflow.tag = 'v0.16': a key with a path is set with `pulumi config set --path "
        "'cmp-platform:ragflow.tag' <value>`, which writes it inside cmp-platform:ragflow",
        "config error: cmp-platform:gatewayBilling.retries = 11: Input should be less than or equal to 10"]


# --- a key set with --secret that is not a declared secret -----------------------------------------------------


@pytest.mark.parametrize(("key", "value", "command", "why"), [
    ("vault", {"address": "http://vault.hidden.example:8200"}, "pulumi config set --path 'cmp-platform:vault.<field>'",
     "renders it into Kubernetes objects that are not Secrets (ConfigMaps, Deployments)"),
    ("controlPlaneUrl", "http://cp.hidden.example:8000", "pulumi config set cmp-platform:controlPlaneUrl",
     "renders it into Kubernetes objects that are not Secrets"),
    ("environment", "dev", "pulumi config set cmp-platform:environment", "decides which rules and objects"),
])
def test_a_stack_key_set_with_secret_is_refused_under_pulumi_naming_the_key_never_its_value(key, value, command, why):
    """Under `pulumi preview`/`up` the SDK hands a --secret key over decrypted: the program refuses it (one line
    naming the key and where secrets belong) before registering anything, and never prints what it holds."""
    with pytest.raises(ConfigError) as caught:
        _load({**MINIMAL, **SECRETS, key: value}, set(SECRETS) | {key})
    message = str(caught.value)
    assert message.startswith(f"config error: cmp-platform:{key} = [secret]: is set with --secret, but the program "
                              "keeps secret only the declared secrets (saleorStaffPassword, provisionerDatabaseUrl, ")
    assert why in message and f"Set its values again without --secret (`{command} <value>`)" in message
    assert "belongs in Vault" in message and message.endswith("(Pulumi.dev.yaml)")
    assert "hidden.example" not in message and len(message.splitlines()) == 1


@pytest.mark.parametrize(("key", "value"), [
    ("vault", {"address": "ftp://vault.hidden.example"}),  # the stack's own rule would quote it
    ("controlPlaneUrl", "http://[cp.hidden.example:8000"),  # the services refuse it, quoting it
])
def test_a_refused_key_is_not_judged_and_every_other_key_still_is(key, value):
    """A refused key's values are neither judged nor shown (a rule's message, even on another key, could quote
    them); a bad value elsewhere is reported with it."""
    small = {"requests": {"cpu": "500m", "memory": "96Mi"}, "limits": {"cpu": "250m", "memory": "192Mi"}}
    config = {**MINIMAL, **SECRETS, key: value, "connectorGateway": {"resources": small}}  # a rule across keys
    with pytest.raises(ConfigError) as caught:
        _load(config, set(SECRETS) | {key})
    lines = str(caught.value).splitlines()
    assert [line.split(": ", 2)[1] for line in lines] == [f"cmp-platform:{key} = [secret]",
                                                          "cmp-platform:connectorGateway.resources.limits.cpu = '250m'"]
    assert "hidden.example" not in str(caught.value)


def test_an_unknown_key_set_with_secret_is_an_unknown_key_that_shows_no_value():
    with pytest.raises(ConfigError) as caught:
        _load({**MINIMAL, **SECRETS, "vaultt": {"address": "http://vault.hidden.example"}}, set(SECRETS) | {"vaultt"})
    assert str(caught.value) == ('config error: cmp-platform:vaultt = [secret]: unknown key '
                                 "(docs/platform.md lists every key) (Pulumi.dev.yaml)")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_any_key_of_a_stack_file_set_with_secret_is_one_refusal_and_nothing_else(stack):
    """Every key each committed stack file sets, set with --secret as `pulumi preview` hands it over (its real
    values): the one error is its refusal (no rule of a stack or service model trips over the redacted values)."""
    values = {key: value for key, value in stack_file(stack).items() if key not in SECRET_KEYS}
    bag = {f"cmp-platform:{key}": value if isinstance(value, str) else json.dumps(value)
           for key, value in {**values, **SECRETS}.items()}
    for key in values:
        secret_keys = {f"cmp-platform:{name}" for name in (*SECRET_KEYS, key)}
        with pytest.raises(ConfigError) as caught:
            stack_config_from_bag(bag, secret_keys)
        assert str(caught.value).startswith(f"config error: cmp-platform:{key} = [secret]: is set with --secret"), (
            key, str(caught.value))
        assert len(str(caught.value).splitlines()) == 1, (key, str(caught.value))


def test_the_program_refuses_a_secret_vault_address_naming_the_key_never_the_address():
    """The real program (__main__.py) under the recording engine, handed `cmp-platform:vault` decrypted and marked
    secret as the language host hands it over: it stops with the refusal as its one line."""
    values, secret_keys = engine_config(base_config(vault={"address": "http://vault.hidden.example:8200"}))
    with pytest.raises(pulumi.RunError) as caught:
        run_main(ROOT, stack="dev", config=values, secret_keys={*secret_keys, "vault"})
    assert str(caught.value).startswith("config error: cmp-platform:vault = [secret]: is set with --secret")
    assert "hidden.example" not in str(caught.value) and len(str(caught.value).splitlines()) == 1
