"""Native API shapes for a channel's C2B settings. Inputs forbid unknown fields."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from pesaswitch.c2b.models import C2BRegistration
from pesaswitch.kit.clock import isoformat
from pesaswitch.kit.patterns import UnsafePattern, check_pattern

MAX_AMOUNT = 250_000


class C2BSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validation_enabled: StrictBool = Field(
        default=False,
        description="Answer Daraja's validation requests by these rules (Safaricom must also "
        "enable external validation on the shortcode).",
    )
    account_pattern: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="A regular expression (RE2 syntax: no backreferences or lookaround) "
        "the whole account number (BillRefNumber) must match.",
    )  # fmt: skip
    min_amount: StrictInt | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    max_amount: StrictInt | None = Field(default=None, ge=1, le=MAX_AMOUNT)
    validation_url: str | None = Field(
        default=None, max_length=2000,
        description="Your own check, asked within Daraja's time budget; signed like webhooks.",
    )  # fmt: skip
    default_action: Literal["accept", "reject"] = Field(
        default="accept",
        description="When validation cannot decide in time: Daraja's ResponseType "
        "Completed (accept) or Cancelled (reject).",
    )

    @field_validator("account_pattern", "validation_url")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # PostgreSQL's text cannot hold U+0000 (SQLite can): refused on both.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL character")
        return value

    @field_validator("account_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        # Checked by the engine that will run it, in linear time (kit/patterns.py).
        if value is not None:
            try:
                check_pattern(value)
            except UnsafePattern as exc:
                message = f"account_pattern is not a regular expression RE2 runs: {exc}"
                raise ValueError(message) from exc
        return value

    @field_validator("validation_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlparse(value)
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ValueError("validation_url must be an http(s) URL")
        return value


class C2BSettingsOut(BaseModel):
    object: Literal["c2b_settings"] = "c2b_settings"
    channel_id: int
    shortcode: str
    validation_enabled: bool
    account_pattern: str | None
    min_amount: int | None
    max_amount: int | None
    validation_url: str | None
    default_action: str
    registered_at: str | None
    swept_until: str | None

    @classmethod
    def render(cls, row: C2BRegistration) -> C2BSettingsOut:
        return cls(
            channel_id=row.channel_id,
            shortcode=row.shortcode,
            validation_enabled=row.validation_enabled,
            account_pattern=row.account_pattern,
            min_amount=row.min_amount,
            max_amount=row.max_amount,
            validation_url=row.validation_url,
            default_action=row.default_action,
            registered_at=isoformat(row.registered_at),
            swept_until=isoformat(row.swept_until),
        )


class C2BSweepOut(BaseModel):
    object: Literal["c2b_sweep"] = "c2b_sweep"
    channel_id: int
    seen: int
    recovered: list[str]
