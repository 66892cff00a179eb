"""wrk (Debian's ``wrk``, C and LuaJIT) as a second load generator for ``/healthz`` and
initiation, beside the asyncio + httpx generator.

The httpx generator spends ~0.5 ms of its own CPU per request and tops out near 2,000
req/s here (its "generator ceiling" row), so its ``/healthz`` figure measures the
generator, not the gateway. wrk needs a tenth of that, so its ``/healthz`` is the
server's; initiation is compared against it ("initiation ≥ 25 % of ``/healthz`` on the same
server in the same run", issue 11). One thread and the run's concurrency in connections,
as in the issue's own cross-check.

Each initiation is a fresh payment: its own phone number (in a range the httpx scenarios
do not use, so no payment of theirs is still pending on it) and its own Idempotency-Key.
The Lua ``done`` hook prints the counts and latency percentiles as one JSON line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

WRK_PHONE_PREFIX = "0713"  # the httpx generator's numbers are 0712xxxxxx
WRK_PHONES = 1_000_000

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""

_PAYMENTS = r"""
local n = 0
request = function()
  n = n + 1
  if n >= %(phones)d then error("wrk ran out of distinct phone numbers") end
  local body = string.format(
    '{"amount": 10, "phone": "%(prefix)s%%06d", "reference": "WRK-%%d"}', n, n)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("wrk-%(run)s-%%d", n),
%(auth)s
  }
  return wrk.format("POST", "/v1/payments", headers, body)
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    failures: int  # non-2xx answers and socket errors
    p50: float  # milliseconds
    p95: float
    p99: float
    started: float  # monotonic
    ended: float

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return (self.requests - self.failures) / max(self.seconds, 1e-9)


def available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for these values


def payments_script(auth: tuple[tuple[str, str], ...], run: str) -> str:
    headers = "\n".join(f"    [{_lua_string(k)}] = {_lua_string(v)}," for k, v in auth)
    return _PAYMENTS % {"phones": WRK_PHONES, "prefix": WRK_PHONE_PREFIX, "run": run,
                        "auth": headers} + _DONE  # fmt: skip


def run(url: str, *, seconds: float, connections: int, script: str = "") -> WrkResult:
    """``wrk -t1 -c<connections> -d<seconds>`` against ``url`` with ``script`` (Lua) and the
    JSON-printing ``done`` hook."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (scripts/ensure-wrk.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        lua = Path(tmp) / "script.lua"
        lua.write_text(script or _DONE)
        command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                   "--timeout", "10s", "-s", str(lua), url]  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)  # noqa: S603
        ended = time.monotonic()
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr[-500:]}")
    data = json.loads(line.removeprefix("WRK_RESULT "))
    failures = sum(data[k] for k in ("non_2xx", "connect", "read", "write", "timeout"))
    return WrkResult(
        data["requests"], data["duration_us"] / 1e6, failures, data["p50_us"] / 1000,
        data["p95_us"] / 1000, data["p99_us"] / 1000, started, ended,
    )  # fmt: skip
