"""structlog set-up with phone numbers masked before anything is written."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from pesaswitch.kit.phones import mask_phone

_PHONE_KEYS = {"phone", "msisdn", "phone_number", "party_a", "PhoneNumber", "PartyA"}
_PHONE_IN_TEXT = re.compile(r"\b(254[17]\d{8}|0[17]\d{8})\b")


def _mask_phones(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key in _PHONE_KEYS and isinstance(value, str | int):
            event_dict[key] = mask_phone(str(value))
        elif isinstance(value, str):
            event_dict[key] = _PHONE_IN_TEXT.sub(lambda m: mask_phone(m.group(1)), value)
    return event_dict


def configure_logging(level: str = "info", *, json: bool = False) -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(level=numeric, format="%(message)s")
    # Libraries that echo what passes through them stay at WARNING even at debug level:
    # httpx logs full URLs at INFO (callback URLs carry secret tokens); the database
    # drivers log every statement with its parameters at DEBUG (full phone numbers,
    # callback tokens, webhook payloads); httpcore and multipart log headers and bodies.
    for name in ("httpx", "httpcore", "aiosqlite", "asyncpg", "sqlalchemy", "multipart",
                 "python_multipart"):  # fmt: skip
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _mask_phones,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
