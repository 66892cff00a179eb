"""What ``pesaswitch doctor`` found: one result per check, printed as text or JSON.

Only FAIL makes the command exit non-zero. WARN is something that works today but
deserves a look (a simulator instead of Daraja, a certificate that expires soon). SKIP is
a check that could not run, because it was not asked for (``--probe``) or because a check
it depends on failed, which is then already a FAIL of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    summary: str
    # Further lines, e.g. one per offending webhook endpoint.
    details: tuple[str, ...] = ()


def passed(name: str, summary: str, *details: str) -> CheckResult:
    return CheckResult(name, Status.PASS, summary, details)


def warned(name: str, summary: str, *details: str) -> CheckResult:
    return CheckResult(name, Status.WARN, summary, details)


def failed(name: str, summary: str, *details: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, summary, details)


def skipped(name: str, summary: str, *details: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, summary, details)


@dataclass(slots=True)
class Report:
    target: str  # where Daraja is, e.g. "sandbox at https://sandbox.safaricom.co.ke"
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.status is Status.FAIL for r in self.results)

    def status_of(self, name: str) -> Status:
        return next(r.status for r in self.results if r.name == name)

    def names_with(self, status: Status) -> set[str]:
        return {r.name for r in self.results if r.status is status}

    def counts(self) -> dict[str, int]:
        return {s.value: sum(r.status is s for r in self.results) for s in Status}

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "counts": self.counts(),
            "checks": [
                {
                    "name": r.name,
                    "status": r.status.value,
                    "summary": r.summary,
                    "details": list(r.details),
                }
                for r in self.results
            ],
        }

    def render_json(self) -> str:
        return json.dumps(self.to_json(), indent=2)

    def render_text(self) -> str:
        width = max((len(r.name) for r in self.results), default=0)
        lines = [f"pesaswitch doctor: Daraja {self.target}", ""]
        for r in self.results:
            lines.append(f"{r.status.value.upper():<4}  {r.name:<{width}}  {r.summary}")
            lines.extend(f"{'':<4}  {'':<{width}}    {detail}" for detail in r.details)
        counts = self.counts()
        lines += [
            "",
            f"{counts['fail']} failed, {counts['warn']} to look at, {counts['pass']} passed, "
            f"{counts['skip']} skipped: " + ("no failures" if self.ok else "not ready"),
        ]
        return "\n".join(lines)


def mask(value: str, *, keep: int = 4) -> str:
    """``abcd…(48 chars)``: enough to tell two keys apart, never enough to use one."""
    if len(value) < keep * 4:  # short values would show too large a share
        return f"…({len(value)} chars)"
    return f"{value[:keep]}…({len(value)} chars)"


def mask_url_password(url: str) -> str:
    """A database URL with its password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def scrub(report: Report, secrets_: Iterable[str]) -> Report:
    """The report with every secret value blanked out, wherever a message quoted it.

    The checks never put a secret in a message on purpose; this catches the ones that
    arrive inside an exception's text (a driver error, a URL in an httpx error).
    """
    values = sorted({s for s in secrets_ if len(s) >= 4}, key=len, reverse=True)

    def clean(text: str) -> str:
        for value in values:
            text = text.replace(value, "***")
        return text

    return Report(
        clean(report.target),
        [
            CheckResult(r.name, r.status, clean(r.summary), tuple(clean(d) for d in r.details))
            for r in report.results
        ],
    )
