"""How a service's settings model becomes its stack slice and its environment (components/workload/config.py),
on a small settings model marked the way the services mark theirs."""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

import pytest
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from components.vault.paths import CONNECTOR
from components.workload.config import ServiceSettings, env_text, service_slice
from infra.config import REDACTED, ConfigError, ImageRef

STACK, PLATFORM, SECRET = {"deploy": "stack"}, {"deploy": "platform"}, {"deploy": "secret"}


class Mode(StrEnum):
    FAST = "fast"
    SAFE = "safe"


class DemoSettings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    url: str = Field(json_schema_extra=PLATFORM)
    limit: int = Field(5, ge=1, json_schema_extra=STACK)
    mode: Mode = Field(Mode.SAFE, json_schema_extra=STACK)
    store: str | None = Field(None, json_schema_extra=STACK)
    store_timeout: float = Field(0.5, gt=0, json_schema_extra={**STACK, "with": "store"})
    service_jwt_secret: SecretStr = Field(json_schema_extra=SECRET)
    local_only: int = 3

    @field_validator("store")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not value.startswith("redis://"):
            raise ValueError("STORE must be redis://")
        return value


class DemoWorkload(ServiceSettings):
    STACK_KEY: ClassVar[str] = "demo"
    SETTINGS: ClassVar[type] = DemoSettings
    SECRET_PATH: ClassVar = CONNECTOR

    image: ImageRef = "ghcr.io/example/demo:1"


DemoConfig = service_slice("DemoConfig", DemoWorkload)


def test_the_slice_holds_the_stack_fields_with_the_service_s_bounds():
    assert DemoConfig.model_validate({"limit": 7, "mode": "fast"}).limit == 7
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        DemoConfig.model_validate({"limit": 0})
    for not_settable in ("url", "serviceJwtSecret", "localOnly"):
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            DemoConfig.model_validate({not_settable: "x"})


def test_the_config_map_holds_stack_and_platform_values_and_the_secret_comes_from_the_external_secret():
    env = DemoConfig.model_validate({"mode": "fast"}).render({"url": "http://cp:8000"})
    assert env.config_map == {"URL": "http://cp:8000", "LIMIT": "5", "MODE": "fast"}  # STORE_TIMEOUT waits on STORE
    assert env.secret_keys == ("service_jwt_secret",)
    with_store = DemoConfig.model_validate({"store": "redis://r:6379"}).render({"url": "http://cp:8000"})
    assert (with_store.config_map["STORE"], with_store.config_map["STORE_TIMEOUT"]) == ("redis://r:6379", "0.5")


def test_the_process_environment_never_reaches_the_render(monkeypatch):
    monkeypatch.setenv("LIMIT", "0")
    monkeypatch.setenv("MODE", "broken")
    env = DemoConfig().render({"url": "http://cp:8000"})
    assert (env.config_map["LIMIT"], env.config_map["MODE"]) == ("5", "safe")


def test_a_value_the_model_refuses_is_one_line_naming_the_stack_key_with_the_model_s_rule():
    slice_ = DemoConfig.model_validate({"store": "memcached://m:11211"})  # the slice has the type, not the rule
    with pytest.raises(ConfigError) as caught:
        slice_.render({"url": "http://cp:8000"})
    assert str(caught.value) == "config error: cmp-platform:demo.store = 'memcached://m:11211': STORE must be redis://"


def test_a_platform_value_the_model_refuses_names_the_slice_and_the_variable():
    class Strict(DemoSettings):
        url: str = Field(pattern=r"^http", json_schema_extra=PLATFORM)

    class StrictWorkload(DemoWorkload):
        SETTINGS: ClassVar[type] = Strict

    with pytest.raises(ConfigError) as caught:
        service_slice("StrictConfig", StrictWorkload)().render({"url": "ftp://cp"})
    assert str(caught.value).startswith("config error: cmp-platform:demo = 'URL=ftp://cp': String should match")


def test_a_secret_placeholder_is_not_judged_and_renders_as_itself_while_every_other_value_is_judged():
    """Where "[secret]" stands for a value nobody may read (stacks/config.py: a key set with --secret), the service's
    rule is not applied to it and the ConfigMap shows the placeholder, never a default or a made-up value."""
    placeholders = {"secret_placeholders": True}
    slice_ = DemoConfig.model_validate({"store": REDACTED, "limit": REDACTED}, context=placeholders)
    env = slice_.render({"url": "http://[secret]:8000"})  # a platform value made from a secret is one too
    assert env.config_map == {"URL": REDACTED, "LIMIT": REDACTED, "MODE": "safe", "STORE": REDACTED,
                              "STORE_TIMEOUT": "0.5"}  # STORE has a value, so its companion is rendered
    with pytest.raises(ConfigError) as caught:  # the service's own rule, beside a placeholder
        DemoConfig.model_validate({"limit": REDACTED, "store": "memcached://m"}, context=placeholders).render(
            {"url": REDACTED})
    assert str(caught.value) == "config error: cmp-platform:demo.store = 'memcached://m': STORE must be redis://"
    # Without that context "[secret]" is a value like any other, and meets the rule.
    with pytest.raises(ConfigError, match=r"cmp-platform:demo.store = \[secret\]: STORE must be redis://"):
        DemoConfig.model_validate({"store": REDACTED}).render({"url": "http://cp:8000"})


def test_every_platform_setting_must_be_given_and_only_settings_may_be():
    with pytest.raises(TypeError, match="the component sets no value for url"):
        DemoConfig().render({})
    with pytest.raises(TypeError, match="local_only are not stack or platform settings"):
        DemoConfig().render({"url": "http://cp:8000", "local_only": 4})


def test_a_secret_is_never_a_stack_key():
    class Leaky(DemoSettings):
        token: SecretStr = Field(json_schema_extra=STACK)

    class LeakyWorkload(DemoWorkload):
        SETTINGS: ClassVar[type] = Leaky

    with pytest.raises(TypeError, match="token is a secret: mark it secret"):
        service_slice("LeakyConfig", LeakyWorkload)


def test_a_secret_setting_needs_its_key_in_the_vault_path():
    class Keyed(DemoSettings):
        api_key: SecretStr = Field(json_schema_extra=SECRET)

    class KeyedWorkload(DemoWorkload):
        SETTINGS: ClassVar[type] = Keyed

    with pytest.raises(TypeError, match=r"api_key have no key in Vault path secret/cmp/connector"):
        service_slice("KeyedConfig", KeyedWorkload)().render({"url": "http://cp:8000"})


@pytest.mark.parametrize(("value", "text"), [
    (2.0, "2"), (0.5, "0.5"), (3, "3"), (True, "true"), (False, "false"), (Mode.FAST, "fast"),
    (["https://a.example.com", "https://b.example.com"], "https://a.example.com,https://b.example.com"),
])
def test_env_text_is_what_the_service_parses_back(value, text):
    assert env_text(value) == text
