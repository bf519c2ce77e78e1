"""Schemas of the operator's admin API: accounts, tokens, grants, adjustments, ledger, prices,
reconcile."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from creditgate.api.schemas.common import Request
from creditgate.money import MAX_AMOUNT, UNITS_PER_CENT

MAX_CENTS = MAX_AMOUNT // UNITS_PER_CENT
ACCOUNT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
# A future ISO 8601 time with its offset; the service takes any future instant, the schema
# names the years 2100-2999 so that every example it allows is still in the future.
FUTURE_TIME = (
    r"^2[1-9][0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
)
Usd = Annotated[str, Field(description="Exact USD decimal string, e.g. 1.50", examples=["1.50"])]
Cents = Annotated[int | float, Field(description="Cents as a JSON number (fractional below a cent)")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class AccountCreate(Request):
    model_config = ConfigDict(
        extra="forbid",
        # only a postpaid account may have a postpaid limit above 0
        json_schema_extra={
            "if": {"not": {"required": ["mode"], "properties": {"mode": {"const": "postpaid"}}}},
            "then": {"properties": {"postpaid_limit_cents": {"maximum": 0}}},
        },
    )
    id: Annotated[str, Field(pattern=ACCOUNT_ID, description="Cloudflare-style hex id, a UUID or a slug")]
    name: Name | None = None
    mode: Literal["prepaid", "postpaid"] | None = None
    postpaid_limit_cents: (
        Annotated[
            int, Field(ge=0, le=MAX_CENTS, description="The hard postpaid limit (postpaid accounts only)")
        ]
        | None
    ) = None


class Account(BaseModel):
    id: str
    name: str | None
    currency: str
    mode: str
    balance_usd: Usd
    balance_cents: Cents
    held_usd: Usd
    postpaid_hard_limit_usd: Usd
    postpaid_soft_limit_usd: Usd | None
    postpaid_effective_limit_usd: Usd
    created_at: str


class PostpaidLimitSet(Request):
    hard_limit_cents: Annotated[int, Field(ge=0, le=MAX_CENTS, description="0: prepaid only")]


class PostpaidLimit(BaseModel):
    """The most the account may owe past its prepaid credit: the lower of the operator's hard
    limit and the customer's soft limit (null when never set)."""

    account_id: str
    hard_limit_usd: Usd
    soft_limit_usd: Usd | None
    effective_limit_usd: Usd
    hard_limit_cents: Cents
    soft_limit_cents: Cents | None
    effective_limit_cents: Cents


class AccountList(BaseModel):
    accounts: list[Account]


class TokenCreate(Request):
    scope: Literal["read", "write", "gateway", "api"]
    name: Name | None = None


class TokenIssued(BaseModel):
    id: str
    account_id: str
    scope: str
    token: str = Field(description="The secret, shown only here")


class Token(BaseModel):
    id: str
    account_id: str
    scope: str
    prefix: str
    name: str | None
    created_at: str
    revoked_at: str | None


class TokenList(BaseModel):
    tokens: list[Token]


class GrantCreate(Request):
    amount_cents: Annotated[int, Field(ge=1, le=MAX_CENTS)]
    expires_at: Annotated[str, Field(pattern=FUTURE_TIME)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = None


class AdjustmentCreate(Request):
    amount_cents: Annotated[
        int,
        Field(
            ge=-MAX_CENTS,
            le=MAX_CENTS,
            description="Signed cents, not 0",
            json_schema_extra={"not": {"const": 0}},
        ),
    ]
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class LedgerEntry(BaseModel):
    id: int
    account_id: str
    kind: str
    amount_usd: Usd
    amount_cents: Cents
    balance_after_usd: Usd
    ref: str | None
    reason: str | None
    expires_at: str | None
    created_at: str


class EntryList(BaseModel):
    entries: list[LedgerEntry]


class Price(BaseModel):
    id: int
    provider: str
    model: str
    effective_from: str
    input_per_mtok_usd: Usd
    output_per_mtok_usd: Usd
    cached_input_per_mtok_usd: Usd
    request_fee_usd: Usd


class PriceList(BaseModel):
    prices: list[Price]


RATE = r"^(0|[1-9][0-9]{0,5})(\.[0-9]{1,9})?$"
Rate = (
    Annotated[str, Field(pattern=RATE, description="USD decimal string")]
    | Annotated[int, Field(ge=0, le=1_000_000)]
)
OptionalRate = (
    Annotated[str, Field(pattern=r"^$|" + RATE, description="USD decimal string; empty for none")]
    | (Annotated[int, Field(ge=0, le=1_000_000)])
)
PAST_OR_FUTURE = (  # or "" for now
    r"^$|^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
)


class PriceRow(Request):
    provider: Annotated[str, Field(max_length=64, pattern=r"\S", description="Trimmed of whitespace")]
    model: Annotated[str, Field(max_length=200, pattern=r"\S", description="Trimmed of whitespace")]
    input_per_mtok_usd: Rate
    output_per_mtok_usd: Rate
    cached_input_per_mtok_usd: OptionalRate | None = None
    request_fee_usd: OptionalRate | None = None
    effective_from: Annotated[str, Field(pattern=PAST_OR_FUTURE, description="2000-2099")] | None = None


class PriceImport(Request):
    prices: list[PriceRow]


class PriceImportResult(BaseModel):
    inserted: int
    unchanged: int


class ReconcileReport(BaseModel):
    ok: bool
    accounts_checked: int
    problems: list[dict[str, Any]]
