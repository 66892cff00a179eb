"""The benchmark's output: a plain-text report (tables) or one JSON document."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.scenarios import Row

GENERATOR_BOUND = 0.85  # within ~15% of the generator's own ceiling
GENERATOR_BUSY = 90.0  # % of a core per generator process
NOISE = 20.0  # % of a core used by the rest of the machine that makes a figure suspect
NOT_MEASURED = ("loadgen", "other")


@dataclass
class Report:
    command: list[str]  # the harness's own argv, for reproducing the run
    setup: dict[str, Any]
    rows: list[Row]
    checks: list[str]
    rss: dict[str, dict[str, int]]  # process → {"hwm_kib", "max_rss_kib"}
    log_summary: dict[str, dict[str, int]]  # log file → {"lines", "tracebacks", ...}
    log_tails: dict[str, str] = field(default_factory=dict)
    failed: bool = False
    clients: int = 1  # load generator processes
    soak: dict[str, dict[str, float]] = field(default_factory=dict)  # process → RSS summary
    statements: dict[str, float] = field(default_factory=dict)  # bench.statements, per payment

    def headline(self) -> list[str]:
        """CPU per complete payment (gateway + worker) beside statements per payment."""
        row = next((r for r in self.rows if r.cpu_ms), None)
        if row is None:
            return ["headline: no end-to-end run, no CPU per payment"]
        ordered = sorted(row.cpu_ms.items(), key=lambda kv: _process_order(kv[0]))
        parts = ", ".join(f"{name} {ms:.2f}" for name, ms in ordered if name != "ours")
        line = (f"HEADLINE: {row.cpu_ms['ours']:.2f} ms of gateway + worker CPU per complete "
                f"payment (end-to-end, {row.count} payments; ms per payment: {parts})")  # fmt: skip
        out = [line]
        if self.statements:
            st = self.statements
            out.append(f"HEADLINE: {st['per payment']:.1f} SQL statements per payment "
                       f"(POST {st['POST']:.1f} + callback {st['callback']:.1f}; "
                       "bench.statements in-process on this run's database)")  # fmt: skip
        return out

    @property
    def reproduce(self) -> str:
        env = [f"{k}={shlex.quote(v)}" for k, v in sorted(inherited_settings().items())]
        return " ".join([*env, ".venv/bin/python -m bench.run", shlex.join(self.command)])

    def annotate(self) -> None:
        """Mark generator-bound rows and name the busiest process of every scenario."""
        ceiling = next((r.rate or 0.0 for r in self.rows if r.scenario == "generator ceiling"), 0.0)
        for row in self.rows:
            busiest = sorted(
                ((share, name) for name, share in row.cpu.items() if name not in NOT_MEASURED),
                reverse=True,
            )
            by_wrk = row.scenario.startswith("wrk ")  # its own CPU is "other"
            if row.cpu.get("other", 0.0) >= NOISE and not by_wrk:
                row.notes.append(f"NOISY: unrelated processes used {row.cpu['other']:.0f}%")
            if row.scenario != "generator ceiling" and row.rate is not None and busiest:
                share, name = busiest[0]
                row.notes.append(f"busiest: {name} {share:.0f}%")
            if row.scenario in ("generator ceiling", "end-to-end webhook") or by_wrk:
                continue
            if row.rate is None:
                continue
            if ceiling and row.rate >= GENERATOR_BOUND * ceiling:
                row.notes.insert(0, f"generator-bound (>= {GENERATOR_BOUND:.0%} of its ceiling)")
            elif row.count and row.cpu.get("loadgen", 0.0) >= GENERATOR_BUSY * self.clients:
                row.notes.insert(0, "generator-bound (its CPU is saturated)")

    def machine(self) -> dict[str, Any]:
        return {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "argv": [sys.executable, *sys.argv],
        }

    def _pg_text(self) -> list[str]:
        rows = [r for r in self.rows if r.pg and r.scenario != "end-to-end webhook"]
        if not rows:
            return []
        keys = sorted({k for r in rows for k in r.pg["sessions"]})
        out = ["", "PostgreSQL sessions during each scenario (average number per state and "
               "wait event, pg_stat_activity sampled every 0.1 s):"]  # fmt: skip
        out += _table(
            ["state: wait", *(r.scenario.removesuffix(" POST") for r in rows)],
            [[k, *(f"{r.pg['sessions'].get(k, 0):.1f}" for r in rows)] for k in keys],
        )
        for r in rows:
            for statement, n in r.pg["lock_waits"].items():
                out.append(f"  {r.scenario}: {n:.1f} sessions waiting on a lock in: {statement}")
        return out

    def as_json(self) -> str:
        return json.dumps(
            {
                "reproduce": self.reproduce,
                "machine": self.machine(),
                "setup": self.setup,
                "scenarios": [asdict(row) for row in self.rows],
                "checks": self.checks,
                "rss": self.rss,
                "logs": self.log_summary,
                "log_tails": self.log_tails,
                "soak_rss": self.soak,
                "cpu_ms_per_payment": next((r.cpu_ms for r in self.rows if r.cpu_ms), {}),
                "statements_per_payment": self.statements,
                "failed": self.failed,
            },
            indent=2,
        )

    def as_text(self) -> str:
        m = self.machine()
        out = [
            f"# reproduce: {self.reproduce}",
            f"machine: os.cpu_count()={m['cpu_count']}, {m['platform']}, Python {m['python']}",
            f"command: {shlex.join(m['argv'])}",
        ]
        out += [f"{key}: {value}" for key, value in self.setup.items()]
        out += ["", *self.headline()]
        out += ["", *_table(
            ["scenario", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "note"],
            [[r.scenario, _rate(r.rate), f"{r.p50:.1f}", f"{r.p95:.1f}", f"{r.p99:.1f}",
              _errors(r.errors), "; ".join(r.notes)] for r in self.rows],
        )]  # fmt: skip
        out += [
            "",
            "req/s counts expected answers only (200, or 201 for POST /v1/payments); latencies",
            "are of those answers; errors are counted by status code or exception (code x n).",
        ]
        out += ["", "checks:", *(f"  {line}" for line in self.checks or ["(none)"])]
        names = sorted({name for row in self.rows for name in row.cpu}, key=_process_order)
        out += ["", "CPU during each scenario (% of one core, averaged; "
                f"{m['cpu_count']} cores = {100 * (m['cpu_count'] or 1)}%; postgres = server "
                "and all backends; other = the rest of the machine):"]  # fmt: skip
        measured = [r for r in self.rows if r.cpu and r.scenario != "end-to-end webhook"]
        out += _table(
            ["process", *(r.scenario.removesuffix(" POST") for r in measured)],
            [[name, *(f"{r.cpu[name]:.0f}" if name in r.cpu else "-" for r in measured)]
             for name in names],
        )  # fmt: skip
        out += self._pg_text()
        out += ["", "peak memory (MiB): VmHWM from /proc at the end, and the largest VmRSS "
                "sampled every 0.2 s:"]  # fmt: skip
        out += _table(
            ["process", "VmHWM", "max VmRSS"],
            [[name, f"{v.get('hwm_kib', 0) / 1024:.0f}", f"{v.get('max_rss_kib', 0) / 1024:.0f}"]
             for name, v in sorted(self.rss.items(), key=lambda kv: _process_order(kv[0]))],
        )  # fmt: skip
        if self.soak:
            out += ["", "soak: VmRSS sampled every 5 s (MiB; start after the first 10% of "
                    "the run; slope = least squares over the rest):"]  # fmt: skip
            out += _table(
                ["process", "start", "peak", "end", "slope MiB/min", "samples"],
                [[name, f"{v['start_mib']:.0f}", f"{v['peak_mib']:.0f}", f"{v['end_mib']:.0f}",
                  f"{v['slope_mib_per_min']:+.2f}", f"{v['samples']:.0f}"]
                 for name, v in sorted(self.soak.items(), key=lambda kv: _process_order(kv[0]))],
            )  # fmt: skip
        out += ["", "logs (warning level and above):"]
        out += _table(
            ["log", "lines", "tracebacks", "errors"],
            [[name, str(v["lines"]), str(v["tracebacks"]), str(v["errors"])]
             for name, v in self.log_summary.items()],
        )  # fmt: skip
        for name, tail in self.log_tails.items():
            out += ["", f"--- tail of {name} ---", tail]
        out += ["", *self.headline()]
        if self.failed:
            out += ["", "RESULT: FAILED (see checks above)"]
        return "\n".join(out)


def inherited_settings() -> dict[str, str]:
    """PESASWITCH_* variables of this environment: every started process inherits them
    (the harness's own settings win), so they are part of what was measured."""
    return {k: v for k, v in os.environ.items() if k.startswith("PESASWITCH_")}


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.0f}"


def _errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in errors.items()) if errors else "0"


def _process_order(name: str) -> tuple[int, str]:
    order = ("gateway", "worker", "simulator", "receiver", "postgres", "loadgen", "other")
    return next((i for i, p in enumerate(order) if name.startswith(p)), len(order)), name


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        parts = [
            cell.ljust(w) if i == 0 or header[i] == "note" else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(parts).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows)]
