"""Settings, read from the environment with the ``PESASWITCH_`` prefix."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pesaswitch.ledger.fees import (
    DEFAULT_COLLECTION_FEE_TIERS,
    DEFAULT_PAYOUT_FEE_TIERS,
    parse_fee_tiers,
)

# The placeholder makes `make run` work out of the box; it is refused for live use
# (see `_refuse_placeholder_secret`), as the FastAPI full-stack template does.
# bandit B105: the placeholder is refused outside the simulator (below).
PLACEHOLDER_SECRET_KEY = "change-me-sandbox-only"  # nosec B105

# Safaricom's published sandbox STK shortcode and passkey (daraja.md §8). Only the
# simulator and Daraja's sandbox accept them.
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"

DARAJA_BASE_URLS = {
    "sandbox": "https://sandbox.safaricom.co.ke",
    "production": "https://api.safaricom.co.ke",
}


class DarajaMode(StrEnum):
    SIMULATOR = "simulator"
    SANDBOX = "sandbox"
    PRODUCTION = "production"


class SimulatorMode(StrEnum):
    # auto: the test number decides every STK outcome. interactive: ordinary numbers wait
    # for a person on the sandbox phone page (/simulator/phone).
    AUTO = "auto"
    INTERACTIVE = "interactive"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PESASWITCH_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///var/pesaswitch.db"
    # PostgreSQL connections per process: kept open, and (with no overflow) the most it
    # opens; a request past them waits for one. A connection opened past the pool is closed
    # after its one use, and a new backend costs PostgreSQL far more CPU than a request:
    # at concurrency 32 a pool of 32 (+8 overflow) opened ~300 connections per 4,000
    # payments and PostgreSQL spent 3.6 ms per payment, a fixed 40 opened 40 and it spent
    # 2.0 (bench/issue-11-rounds.md, seventh round). 40 per process keeps an API
    # process and a worker within PostgreSQL's default max_connections (100).
    db_pool_size: int = Field(default=40, ge=1)
    # Connections opened past the pool in a burst, each closed after use.
    db_pool_overflow: int = Field(default=0, ge=0)
    # Test each pooled PostgreSQL connection before use (one more round trip per request).
    db_pool_pre_ping: bool = False
    # How long a process trusts an API key it has verified (revocation from another
    # process takes effect within this; from the same process, at once). 0: no cache.
    api_key_cache_seconds: float = Field(default=5.0, ge=0)
    # API key guessing: this many invalid keys from one address within the window block
    # that address's unverified keys for a while (accounts/throttle.py).
    auth_failure_limit: int = Field(default=20, ge=1)
    auth_failure_window: float = Field(default=300.0, gt=0)
    auth_block_seconds: float = Field(default=300.0, gt=0)
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    secret_key: str = PLACEHOLDER_SECRET_KEY
    log_level: str = "info"
    log_json: bool = False
    # FastAPI's own OpenTelemetry spans and metrics, for an operator who configures the
    # OpenTelemetry SDK. Off by default: FastAPI asks the global providers on every request
    # whether they are configured (~1.5 % of the gateway's CPU per payment).
    opentelemetry: bool = False

    daraja_mode: DarajaMode = DarajaMode.SIMULATOR
    daraja_base_url: str = ""
    daraja_consumer_key: str = "pesaswitch-simulator-key"
    daraja_consumer_secret: str = "pesaswitch-simulator-secret"
    daraja_shortcode: str = SANDBOX_SHORTCODE
    daraja_passkey: str = SANDBOX_PASSKEY
    daraja_timeout: float = Field(default=30.0, gt=0)

    # The simulator (embedded in `serve` when daraja_mode is "simulator", or standalone).
    simulator_delay: float = Field(default=3.0, ge=0)
    simulator_hang_seconds: float = Field(default=40.0, ge=0)
    simulator_pending_queries: int = Field(default=3, ge=0)
    simulator_rule_same_amount: bool = True
    simulator_rule_subscriber_lock: bool = True
    # Interactive mode: the sandbox phone's PIN, and how long a prompt waits for a person
    # before it ends as 1037 by itself (Daraja gives up after about a minute, daraja.md §5).
    simulator_mode: SimulatorMode = SimulatorMode.AUTO
    simulator_pin: str = "1234"
    simulator_prompt_timeout: float = Field(default=60.0, ge=0)
    # B2C, Transaction Status and Account Balance: the initiator (an API user) and its
    # password, encrypted with Daraja's certificate into the SecurityCredential. The
    # defaults are Safaricom's published sandbox initiator (daraja.md §8). An empty
    # certificate path means the simulator's own certificate in simulator mode.
    daraja_initiator_name: str = "testapi"
    daraja_initiator_password: str = "Safaricom999!*!"
    daraja_b2c_shortcode: str = "600000"
    daraja_certificate_path: str = ""
    simulator_b2c_utility_balance: int = Field(default=1_000_000, ge=0)
    # OAuth: by default any key/secret pair gets a token, so any app works out of the box;
    # false refuses all but the configured pair with 400.008.01, as Daraja does (what
    # `pesaswitch doctor`'s credentials check is tried against).
    simulator_accept_any_app: bool = True
    # Chaos runs (chaos/, pesaswitch/simulator/chaos.py): a seed turns on the simulator's
    # seeded faults; the rate is the share of requests and of callbacks that meet one.
    simulator_chaos_seed: int | None = None
    simulator_chaos_rate: float = Field(default=0.3, ge=0, le=1)
    simulator_chaos_late_seconds: float = Field(default=8.0, ge=0)

    # Reconciliation of payments whose callback has not arrived.
    reconcile_after: float = Field(default=60.0, ge=0)
    reconcile_backoff: str = "15,30,60,120,300,600,1800,3600"
    reconcile_max_age: float = Field(default=86400.0, gt=0)
    reconcile_interval: float = Field(default=1.0, gt=0)
    reconcile_batch: int = Field(default=50, ge=1)
    # Transaction Status answers 2032 ("does not exist") for a payout it has not heard of.
    # A payout still in Daraja's queue can be unknown to it and paid moments later (the
    # chaos run's simulator does this; Daraja documents neither way), so 2032 counts as
    # "never ran, release the funds" only once the payout is this old.
    payout_not_found_grace: float = Field(default=300.0, ge=0)

    # Outbound webhooks (Standard Webhooks, from the transactional outbox).
    webhook_retry_schedule: str = "5,300,1800,7200,18000,36000,36000"
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=32, ge=1)
    # Sends in flight to one endpoint (or callback URL) per worker: a slow receiver gets
    # this many slots, never all of them. Default: half of webhook_concurrency. (A cap of
    # 4 measured 48 deliveries/s against 150/s to a single fast endpoint on SQLite.)
    webhook_destination_concurrency: int = Field(default=0, ge=0)  # 0: half
    webhook_interval: float = Field(default=0.5, gt=0)
    # PostgreSQL: once woken by a new delivery, wait this long before claiming, so the
    # deliveries of a busy moment go out in one claim rather than a claim each
    # (webhooks/wakeup.py; bench/issue-11-rounds.md has the figures).
    webhook_wakeup_gather: float = Field(default=0.025, ge=0)
    # SQLite: how often the worker looks for new deliveries between polls (wakeup.py).
    webhook_sqlite_watch: float = Field(default=0.05, gt=0)
    # Sandbox accounts may send webhooks to loopback/private addresses (local receivers);
    # live accounts never may. `make run` turns it on.
    sandbox_allow_private_urls: bool = False
    # C2B: the merchant's validation URL must answer inside Daraja's ~8 s budget
    # (daraja.md §7), so it gets less; then the channel's default applies.
    c2b_validation_timeout: float = Field(default=5.0, gt=0, le=7.5)
    # The daily sweep of Pull Transactions (seconds between sweeps; window in hours).
    c2b_sweep_interval: float = Field(default=86400.0, gt=0)
    c2b_sweep_window_hours: int = Field(default=48, ge=1, le=48)
    # STK payments settled by STK Query have no receipt: ask Transaction Status for it.
    stk_receipt_lookup: bool = True
    # Orphaned pushes (payments/orphans.py): pending with no CheckoutRequestID, because the
    # push's answer was lost or the API process died mid-push, and no callback came. Once
    # the prompt can no longer be answered, the shortcode's own statement (Pull
    # Transactions) decides: the payment is in it (completed, with its receipt) or not
    # (expired, no_transaction). An STK prompt lives about a minute (1037 after that,
    # daraja.md §5); the margin covers clock skew and how long the statement takes to list
    # a payment, which Daraja does not document. Whether its statement lists STK payments
    # is not documented either (UNCERTAIN), so the check is on with the simulator only
    # unless set: turn it on once a paid STK payment shows in your shortcode's statement.
    stk_statement_check: bool | None = None
    stk_prompt_lifetime: float = Field(default=60.0, gt=0)
    stk_statement_margin: float = Field(default=300.0, ge=0)

    # The PayNexus dialect's own contract: its amount caps and per-key rate limit.
    paynexus_max_amount_live: int = Field(default=150_000, ge=1)
    paynexus_max_amount_sandbox: int = Field(default=50, ge=1)
    paynexus_rate_limit: int = Field(default=300, ge=1)

    # STK abuse protection (UpesiPay's rules, pesaswitch/protection/stk.py). A run of
    # failed/cancelled/expired prompts to one number blocks that number for the account;
    # too many failures in a sliding window restrict the account's STK prompts.
    stk_protection: bool = True
    stk_phone_failure_limit: int = Field(default=10, ge=1)
    stk_phone_block_seconds: float = Field(default=86400.0, gt=0)
    stk_account_window_seconds: float = Field(default=21600.0, gt=0)
    # "failures:seconds,…": at least that many failures in the window → restricted that long.
    stk_account_restrictions: str = "51:14400,500:86400,1000:259200"

    # The operator's fees, "LOW-HIGH:FEE,…" with FEE = N | P% | N+P% (pesaswitch/ledger/fees.py).
    # Collections: taken out of the amount credited to a wallet. Payouts: charged on top.
    collection_fee_tiers: str = DEFAULT_COLLECTION_FEE_TIERS
    payout_fee_tiers: str = DEFAULT_PAYOUT_FEE_TIERS

    embedded_worker: bool = True
    stk_min_amount: int = Field(default=1, ge=1)
    stk_max_amount: int = Field(default=250_000, ge=1)
    idempotency_lock_seconds: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    bootstrap_sandbox_account: bool = False

    @field_validator("stk_account_restrictions")
    @classmethod
    def _check_tiers(cls, value: str) -> str:
        parse_tiers(value)  # a typo should stop the process at start, not at a failure
        return value

    @field_validator("collection_fee_tiers", "payout_fee_tiers")
    @classmethod
    def _check_fee_tiers(cls, value: str) -> str:
        parse_fee_tiers(value)  # a tariff typo stops the process at start
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        if self.daraja_mode != DarajaMode.SIMULATOR and self.secret_key == PLACEHOLDER_SECRET_KEY:
            raise ValueError(
                "PESASWITCH_SECRET_KEY is the sandbox placeholder; set a long random value "
                "before talking to Daraja's sandbox or production"
            )
        if len(self.secret_key) < 16:
            raise ValueError("PESASWITCH_SECRET_KEY must be at least 16 characters")
        return self

    @cached_property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @cached_property
    def effective_daraja_base_url(self) -> str:
        if self.daraja_base_url:
            return self.daraja_base_url.rstrip("/")
        if self.daraja_mode == DarajaMode.SIMULATOR:
            # Embedded: the client reaches the simulator through an ASGI transport.
            return "http://daraja-simulator.invalid"
        return DARAJA_BASE_URLS[self.daraja_mode.value]

    @property
    def embedded_simulator(self) -> bool:
        return self.daraja_mode == DarajaMode.SIMULATOR and not self.daraja_base_url

    @cached_property
    def reconcile_schedule(self) -> tuple[float, ...]:
        return parse_seconds_list(self.reconcile_backoff)

    def next_query_at(
        self, *, attempts: int, created_at: datetime, now: datetime
    ) -> datetime | None:
        """When a pending payment, payout or reversal is asked about again after its
        ``attempts``-th status query (the last delay repeats); None once it is older than
        ``reconcile_max_age``: it stays pending and visible, and is no longer asked about."""
        if (now - created_at).total_seconds() > self.reconcile_max_age:
            return None
        schedule = self.reconcile_schedule
        return now + timedelta(seconds=schedule[min(attempts - 1, len(schedule) - 1)])

    @property
    def checks_statement(self) -> bool:
        """Whether orphaned pushes are settled from the shortcode's statement."""
        if self.stk_statement_check is not None:
            return self.stk_statement_check
        return self.daraja_mode == DarajaMode.SIMULATOR

    @property
    def orphan_after(self) -> timedelta:
        """From a payment's creation to when its statement is conclusive: the push is
        answered or abandoned within the client's timeout, its prompt then lives
        ``stk_prompt_lifetime``, and the statement gets ``stk_statement_margin``."""
        return timedelta(
            seconds=self.daraja_timeout + self.stk_prompt_lifetime + self.stk_statement_margin
        )

    @property
    def webhook_destination_cap(self) -> int:
        return self.webhook_destination_concurrency or max(1, self.webhook_concurrency // 2)

    @cached_property
    def webhook_schedule(self) -> tuple[float, ...]:
        return parse_seconds_list(self.webhook_retry_schedule)

    @cached_property
    def stk_restriction_tiers(self) -> tuple[tuple[int, float], ...]:
        """(failures, seconds) pairs, fewest failures first."""
        return parse_tiers(self.stk_account_restrictions)

    def sqlite_path(self) -> Path | None:
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url.removeprefix(prefix))
        return None


def parse_seconds_list(raw: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in raw.split(",") if part.strip())
    if not values or any(v < 0 for v in values):
        raise ValueError(f"expected comma-separated non-negative seconds, got {raw!r}")
    return values


def parse_tiers(raw: str) -> tuple[tuple[int, float], ...]:
    """``"51:14400,500:86400"`` → ((51, 14400.0), (500, 86400.0)), sorted by count."""
    tiers: list[tuple[int, float]] = []
    for part in raw.split(","):
        if not part.strip():
            continue
        count, sep, seconds = part.partition(":")
        if not sep or int(count) < 1 or float(seconds) <= 0:
            raise ValueError(f"expected comma-separated failures:seconds pairs, got {raw!r}")
        tiers.append((int(count), float(seconds)))
    return tuple(sorted(tiers))
