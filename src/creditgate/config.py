"""Settings: one pydantic-settings model of every CREDITGATE_* variable (all in the README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "CREDITGATE_"
_SECRET_FIELDS = frozenset(
    {"admin_token", "stripe_api_key", "stripe_webhook_secret", "upstream_encryption_key"}
)


class ConfigError(ValueError):
    """A setting that cannot work; the message names the variable and never echoes a secret."""


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "creditgate"


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick our async drivers."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(
        f"unsupported database URL scheme {url.split(':', 1)[0]!r} (use postgresql:// or sqlite:///)"
    )


def mask_url(url: str) -> str:
    """The URL with its password (if any) replaced by ***, for logs and messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    """Runtime configuration. `Settings.from_env()` reads the environment; constructing it
    directly (tests) takes only the arguments given, with the defaults for the rest."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True, validate_default=True
    )

    database_url: str = ""
    data_dir: Path = Field(default_factory=_default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=1, le=65535)
    admin_token: SecretStr | None = None
    payments: Literal["sandbox", "stripe"] = "sandbox"
    hold_ttl_seconds: int = Field(default=600, ge=1)
    db_pool_size: int = Field(default=20, ge=1)
    auto_migrate: bool = True
    run_jobs: bool = True
    public_url: str | None = None
    topup_config_api_writes: bool = True
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Stripe (CREDITGATE_PAYMENTS=stripe): secrets, shown as ********** in repr().
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = Field(default=2, ge=0)
    # Invoices: seller identity, tax and extra PDF fonts (docs/invoices.md).
    seller_name: str = "creditgate"
    seller_address: str | None = None  # lines separated by newlines or a literal "\\n"
    seller_tax_id: str | None = None
    tax_rate_bps: int = Field(default=0, ge=0, le=10_000)
    tax_name: str = "Tax"
    # os.pathsep-separated TTF/OTF paths (e.g. a Noto Sans CJK file) for characters Noto Sans lacks
    invoice_extra_fonts: Annotated[tuple[str, ...], NoDecode] = ()
    # The billing portal and console (creditgate.web, docs/portal.md): how long a portal link
    # may wait to be opened, how long a signed-in session lasts, and Stripe.js's key.
    portal_link_minutes: int = Field(default=10, ge=1, le=24 * 60)
    portal_session_hours: int = Field(default=8, ge=1, le=30 * 24)
    stripe_publishable_key: str | None = None
    # The metering proxy (docs/proxy.md): the key that encrypts upstream API keys at rest (any
    # string; generated into <data_dir>/upstream-key when unset) and the shared connection pool.
    upstream_encryption_key: SecretStr | None = None
    proxy_max_connections: int = Field(default=200, ge=1)
    # Usage applier (issue 13, docs/workflows.md): "deferred" answers a usage report once its
    # events are stored and an applier (in `serve` and `creditgate worker`) posts the debit,
    # rollups and spend off the request path; "inline" applies them in the request's transaction.
    usage_apply: Literal["deferred", "inline"] = "deferred"
    usage_apply_batch: int = Field(default=5000, ge=1)  # pending rows per apply transaction
    usage_apply_poll_seconds: float = Field(default=0.2, gt=0)  # wake-up when no ingest signals
    # the least time between the starts of two apply passes: under load a pass then sums more
    # events per account (fewer ledger, spend and rollup writes); the lag grows by up to this
    usage_apply_interval_seconds: float = Field(default=0.25, ge=0, le=5)
    # Growth of usage history (issue 13, docs/scaling.md "Partitions and retention"): event ids
    # are deduplicated for this many days after they are received (at least 35), and raw usage
    # events are kept for the current month and this many before it (unset: forever; the
    # rollups, ledger and balances are always kept).
    dedupe_horizon_days: int = Field(default=40, ge=35)
    raw_event_retention_months: int | None = Field(default=None, ge=1)
    extra: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _default_database(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("database_url"):
            data_dir = Path(data.get("data_dir") or _default_data_dir())
            data = {**data, "data_dir": data_dir, "database_url": f"sqlite:///{data_dir / 'creditgate.db'}"}
        return data

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, url: str) -> str:
        return normalize_database_url(url)

    @field_validator("invoice_extra_fonts", mode="before")
    @classmethod
    def _font_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(p for p in value.split(os.pathsep) if p)
        return value

    @field_validator("invoice_extra_fonts")
    @classmethod
    def _fonts_exist(cls, paths: tuple[str, ...]) -> tuple[str, ...]:
        for path in paths:
            if not Path(path).is_file():
                raise ValueError(f"CREDITGATE_INVOICE_EXTRA_FONTS: no such font file {path!r}")
        return paths

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, level: Any) -> Any:
        return level.lower() if isinstance(level, str) else level

    @classmethod
    def from_env(cls) -> Settings:
        """Read CREDITGATE_* variables; ConfigError (one line, naming the variable) when one is bad."""
        try:
            return _FromEnvironment().checked()
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes` applied (and validated), like dataclasses.replace."""
        return Settings.model_validate({**dict(self), **changes})

    def checked(self) -> Settings:
        """Fail fast on settings that cannot work together (never echoing a secret)."""
        if self.payments == "stripe":
            missing = [
                name
                for name, value in (
                    ("CREDITGATE_STRIPE_API_KEY", self.stripe_api_key),
                    ("CREDITGATE_STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret),
                )
                if not value
            ]
            if missing:
                raise ConfigError(f"CREDITGATE_PAYMENTS=stripe needs {' and '.join(missing)}")
        return self

    def secret(
        self,
        name: Literal["admin_token", "stripe_api_key", "stripe_webhook_secret", "upstream_encryption_key"],
    ) -> str | None:
        """The plain value of a secret setting (for the one place that needs it)."""
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value else None

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (mask_url(value) if key == "database_url" and isinstance(value, str) else value)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """Where this server is reachable, for links such as invoice PDFs."""
        return self.public_url or f"http://{self.host}:{self.port}"


class _FromEnvironment(Settings):
    """Settings read from the environment (the only source besides explicit arguments)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings)

    def __repr_name__(self) -> str:
        return "Settings"


def describe(exc: ValidationError) -> str:
    """One line for a failed validation: each bad variable, why, and (unless secret) its value."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = env_name(field) if field else "settings"
        message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        hidden = field in _SECRET_FIELDS or isinstance(value, dict) or value is None
        shown = "" if hidden else f" (got {value!r})"
        if field == "database_url" and isinstance(value, str):
            shown = f" (got {mask_url(value)!r})"
        if message.startswith(name + ":"):  # the validator already named the variable
            message = message[len(name) + 1 :].lstrip()
        parts.append(f"{name}: {message}{shown}")
    return "; ".join(parts)
