"""What the Daraja client raises. The payments service turns these into problem answers.

DarajaError
├── DarajaBusinessError     Daraja answered and refused (validation, locked subscriber,
│                           bad credentials, throttling): nothing reached the phone.
└── DarajaTechnicalError    no usable answer: timeout, connection failure, 5xx, garbage.
                            ``maybe_sent`` says whether the request may have taken effect.
"""

from __future__ import annotations


class DarajaError(Exception):
    pass


class DarajaBusinessError(DarajaError):
    def __init__(self, *, http_status: int, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.http_status = http_status
        self.error_code = error_code
        self.message = message

    @property
    def is_subscriber_locked(self) -> bool:
        text = self.message.lower()
        return self.error_code == "500.001.1001" and (
            "lock subscriber" in text or "already in process" in text
        )

    @property
    def is_throttled(self) -> bool:
        return self.error_code in {"500.003.02", "500.003.03"}

    @property
    def is_duplicate_request(self) -> bool:
        """B2C refused a reused OriginatorConversationID: the first request may have paid.

        500.002.1001 also means "System internal error.", which proves nothing, so the
        message decides here (daraja.md §6).
        """
        return self.error_code == "500.002.1001" and "duplicate" in self.message.lower()

    @property
    def is_credentials_problem(self) -> bool:
        return self.error_code.startswith("400.008") or (
            self.error_code == "500.001.1001" and not self.is_subscriber_locked
        )


class DarajaTechnicalError(DarajaError):
    def __init__(self, message: str, *, maybe_sent: bool, timeout: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
        self.timeout = timeout
