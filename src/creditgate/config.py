"""Settings, read from CREDITGATE_* environment variables. Every variable is in the README."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "creditgate"


def normalize_database_url(url: str) -> str:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick our async drivers."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, not {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Build it with `Settings.from_env()` or directly in tests."""

    database_url: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8787
    admin_token: str | None = None
    payments: str = "sandbox"
    hold_ttl_seconds: int = 600
    db_pool_size: int = 20
    auto_migrate: bool = True
    run_jobs: bool = True
    public_url: str | None = None
    topup_config_api_writes: bool = True
    # Stripe (CREDITGATE_PAYMENTS=stripe). The key and signing secret are never printed: they
    # are left out of repr() and never logged.
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = 2
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("CREDITGATE_DATA_DIR") or _default_data_dir())
        url = os.environ.get("CREDITGATE_DATABASE_URL") or f"sqlite:///{data_dir / 'creditgate.db'}"
        return cls(
            database_url=normalize_database_url(url),
            data_dir=data_dir,
            host=os.environ.get("CREDITGATE_HOST", "127.0.0.1"),
            port=_int("CREDITGATE_PORT", 8787),
            admin_token=os.environ.get("CREDITGATE_ADMIN_TOKEN") or None,
            payments=os.environ.get("CREDITGATE_PAYMENTS", "sandbox"),
            hold_ttl_seconds=_int("CREDITGATE_HOLD_TTL_SECONDS", 600),
            db_pool_size=_int("CREDITGATE_DB_POOL_SIZE", 20),
            auto_migrate=_bool("CREDITGATE_AUTO_MIGRATE", True),
            run_jobs=_bool("CREDITGATE_RUN_JOBS", True),
            public_url=os.environ.get("CREDITGATE_PUBLIC_URL") or None,
            topup_config_api_writes=_bool("CREDITGATE_TOPUP_CONFIG_API_WRITES", True),
            stripe_api_key=os.environ.get("CREDITGATE_STRIPE_API_KEY") or None,
            stripe_webhook_secret=os.environ.get("CREDITGATE_STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=os.environ.get("CREDITGATE_STRIPE_API_BASE") or None,
            stripe_max_network_retries=_int("CREDITGATE_STRIPE_MAX_NETWORK_RETRIES", 2),
        ).checked()

    def checked(self) -> Settings:
        """Fail fast on settings that cannot work together (never echoing a secret)."""
        if self.payments not in ("sandbox", "stripe"):
            raise ValueError(f"CREDITGATE_PAYMENTS must be sandbox or stripe, not {self.payments!r}")
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
                raise ValueError(f"CREDITGATE_PAYMENTS=stripe needs {' and '.join(missing)}")
        if self.stripe_max_network_retries < 0:
            raise ValueError("CREDITGATE_STRIPE_MAX_NETWORK_RETRIES must be >= 0")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def base_url(self) -> str:
        """Where this server is reachable, for links such as invoice PDFs."""
        return self.public_url or f"http://{self.host}:{self.port}"

    # --- Invoices: seller identity, tax and PDF fonts (issue 12 item 8) -------------------
    # Read from the environment when not given (as pydantic-settings does), so from_env()
    # needs no line for them. Port as: CREDITGATE_SELLER_NAME (str, "creditgate"),
    # CREDITGATE_SELLER_ADDRESS (str | None; lines separated by newlines or a literal "\\n"),
    # CREDITGATE_SELLER_TAX_ID (str | None), CREDITGATE_TAX_RATE_BPS (int 0..10000, 0),
    # CREDITGATE_TAX_NAME (str, "Tax"), CREDITGATE_INVOICE_EXTRA_FONTS (os.pathsep-separated
    # TTF/OTF paths, e.g. a Noto Sans CJK file, used for characters Noto Sans lacks; none).
    seller_name: str = field(default_factory=lambda: os.environ.get("CREDITGATE_SELLER_NAME") or "creditgate")
    seller_address: str | None = field(
        default_factory=lambda: os.environ.get("CREDITGATE_SELLER_ADDRESS") or None
    )
    seller_tax_id: str | None = field(
        default_factory=lambda: os.environ.get("CREDITGATE_SELLER_TAX_ID") or None
    )
    tax_rate_bps: int = field(default_factory=lambda: _int("CREDITGATE_TAX_RATE_BPS", 0))
    tax_name: str = field(default_factory=lambda: os.environ.get("CREDITGATE_TAX_NAME") or "Tax")
    invoice_extra_fonts: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            p for p in os.environ.get("CREDITGATE_INVOICE_EXTRA_FONTS", "").split(os.pathsep) if p
        )
    )

    def __post_init__(self) -> None:
        if not 0 <= self.tax_rate_bps <= 10_000:
            raise ValueError("CREDITGATE_TAX_RATE_BPS must be between 0 and 10000 (basis points)")
        for path in self.invoice_extra_fonts:
            if not Path(path).is_file():
                raise ValueError(f"CREDITGATE_INVOICE_EXTRA_FONTS: no such font file {path!r}")
