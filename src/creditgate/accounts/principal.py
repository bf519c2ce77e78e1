"""Who is calling, and what they may do."""

from __future__ import annotations

from dataclasses import dataclass

from creditgate.errors import PermissionDenied

SCOPES = ("read", "write", "gateway", "api")

# scope -> the actions it grants
_GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
    "gateway": frozenset({"gateway"}),
    # the metering proxy (docs/proxy.md): call models through /openai and /anthropic, nothing else
    "api": frozenset({"api"}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the operator, or a token scoped to one account."""

    account_id: str | None
    scope: str
    token_id: str | None = None

    @property
    def is_operator(self) -> bool:
        return self.account_id is None and self.scope == "operator"

    def may(self, action: str, account_id: str) -> bool:
        if self.is_operator:
            return True
        return self.account_id == account_id and action in _GRANTS.get(self.scope, frozenset())

    def require(self, action: str, account_id: str) -> None:
        """Raise PermissionDenied unless this caller may do `action` on `account_id`. The
        message never says whether the other account exists."""
        if not self.may(action, account_id):
            if self.account_id != account_id and not self.is_operator:
                raise PermissionDenied("this token is not valid for the requested account")
            raise PermissionDenied(f"this token's scope ({self.scope}) does not allow {action}")

    def require_operator(self) -> None:
        if not self.is_operator:
            raise PermissionDenied("this operation needs the operator token")


OPERATOR = Principal(account_id=None, scope="operator")
