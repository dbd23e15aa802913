"""API keys: which region each belongs to and which account it acts for.

Each key is its own account unless several keys are configured with the same account name
(``--api-key cn-beijing=sk-a@team``). Ids shown in the task list (``api_key_id``, ``caller_uid``)
are derived from the key and account name, so they are stable across runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import DashScopeError, quoted
from .models import Account
from .regions import REGIONS


def _digits(text: str, n: int) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16))[:n]


@dataclass(frozen=True)
class KeySpec:
    region: str
    api_key: str
    account: str | None = None

    @classmethod
    def parse(cls, text: str) -> "KeySpec":
        """``REGION=KEY`` or ``REGION=KEY@ACCOUNT`` (the command line's ``--api-key``)."""
        region, sep, rest = text.partition("=")
        if not sep or not rest:
            raise ValueError(f"--api-key wants REGION=KEY[@ACCOUNT], got {text!r}")
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; use one of {', '.join(REGIONS)}")
        key, _, account = rest.partition("@")
        return cls(region, key, account or None)


class KeyRing:
    def __init__(self, keys: list[KeySpec]):
        given = {k.region for k in keys}
        # A region with no configured key gets its documented default key (README, "Keys").
        defaults = [KeySpec(r.name, r.default_api_key) for r in REGIONS.values() if r.name not in given]
        self._accounts: dict[str, Account] = {}
        for spec in [*keys, *defaults]:
            account_name = spec.account or spec.api_key
            self._accounts[spec.api_key] = Account(
                account_id=_digits(f"account:{spec.region}:{account_name}", 16),
                region=spec.region,
                api_key=spec.api_key,
                api_key_id=_digits(f"key:{spec.api_key}", 6),
            )
        # (Authorization header, region) -> its account, for headers that authenticated: every
        # poll sends the same one. Bounded (clients choose the spelling).
        self._accepted: dict[tuple[str, str], Account] = {}

    def keys(self) -> list[Account]:
        return list(self._accounts.values())

    def default_key(self, region: str) -> str:
        return next(a.api_key for a in self._accounts.values() if a.region == region)

    def lookup(self, authorization: str | None, region: str) -> Account | None:
        """The account behind the header, or None (for quotas and the journal, which never refuse)."""
        account = self._accounts.get(_bearer(authorization))
        return account if account is not None and account.region == region else None

    def authenticate(self, authorization: str | None, region: str) -> Account:
        """The account behind ``Authorization: Bearer <key>`` for a request to ``region``."""
        accepted = self._accepted.get((authorization, region))  # type: ignore[arg-type]
        if accepted is not None:
            return accepted
        account = self._authenticate(authorization, region)
        if len(self._accepted) >= _ACCEPTED_KEPT:
            self._accepted.clear()
        self._accepted[(authorization, region)] = account  # type: ignore[index]
        return account

    def _authenticate(self, authorization: str | None, region: str) -> Account:
        key = _bearer(authorization)
        if not key:
            raise DashScopeError.of("no_api_key", reason=_missing_key_reason(authorization))
        account = self._accounts.get(key)
        # A key from the other region is as unknown here as a made-up one (api-facts §0).
        if account is None:
            raise DashScopeError.of("invalid_api_key", reason=(
                f"key {masked(key)} is not configured in any region (keys come from --api-key; "
                f"a region without one has its default key)"))
        if account.region != region:
            raise DashScopeError.of("invalid_api_key", reason=(
                f"key {masked(key)} belongs to {account.region}, and this request went to "
                f"{region}'s endpoint"))
        return account


_ACCEPTED_KEPT = 256


def masked(key: str) -> str:
    """A key as reasons show it: enough to recognise it, not to use it."""
    return quoted(key if len(key) <= 12 else f"{key[:8]}…{key[-4:]}")


def _missing_key_reason(authorization: str | None) -> str:
    if authorization is None:
        return "no Authorization header (send Authorization: Bearer <key>)"
    if not authorization.strip():
        return "the Authorization header is empty"
    return (f"the Authorization header is not 'Bearer <key>' "
            f"(it starts with {quoted(authorization.strip()[:10])})")


def bearer_key(authorization: str | None) -> str:
    return _bearer(authorization)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        return ""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    return authorization.strip() if not value else ""
