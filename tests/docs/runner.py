"""Running a page's walkthrough against a fresh `make run` equivalent, as a reader would.

The reader's checkout is mirrored in a temporary directory (``.venv`` and ``examples``
linked, ``var/`` empty), so the gateway starts on a clean database and whatever the
commands write (``var/sandbox.env``, ``merchant.key``) stays out of the repository. The
gateway is what ``make run`` starts: ``pesaswitch serve --bootstrap`` with
``PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS=true``, and two differences: the simulator calls
back after 1.5 s instead of 3 (so the pages' ``sleep 4`` keeps its margin on a loaded
machine), and the ports:
every ``127.0.0.1:<port>`` of the page becomes a free port (8000 the gateway's), in the
commands, the answers and the example programs' base-URL variables (``EXAMPLE_URLS``,
whose values are those programs' own defaults).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs import answers
from tests.docs.pages import Block, Mode, ports, rewrite_ports
from tests.support.processes import Process, free_port

REPO = Path(__file__).resolve().parents[2]
GATEWAY_PORT = 8000
BLOCK_TIMEOUT = 90.0
# The example programs' defaults (tests/docs/test_walkthroughs.py checks they are).
EXAMPLE_URLS = {
    "PAYHERO_BASE_URL": "http://127.0.0.1:8000/api/v2",
    "PAYNEXUS_BASE_URL": "http://127.0.0.1:8000/api",
    "PAYHERO_CALLBACK_URL": "http://127.0.0.1:8082/payhero",
}
# The shell of a walkthrough: stop at the first failing command, unset variable or
# failing pipe; curl fails on an HTTP error too (a reader would see the error body).
CURL = 'curl() { command curl --fail-with-body "$@"; }'
PRELUDE = f"set -euo pipefail\n{CURL}\n"


class WalkthroughError(AssertionError):
    pass


@dataclass
class Walkthrough:
    name: str
    blocks: list[Block]
    workdir: Path
    mapping: dict[int, int] = field(default_factory=dict)
    gateway: Process | None = None
    shell: subprocess.Popen[str] | None = None
    background: list[tuple[Block, Path]] = field(default_factory=list)
    ran: int = 0

    def __post_init__(self) -> None:
        self.mapping = {port: free_port() for port in ports(self.blocks) | {GATEWAY_PORT}}
        for sub in ("var", "blocks", "out"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / ".venv").symlink_to(Path(sys.executable).parent.parent)
        (self.workdir / "examples").symlink_to(REPO / "examples")

    @property
    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PESASWITCH_")}
        env.update({k: rewrite_ports(v, self.mapping) for k, v in EXAMPLE_URLS.items()})
        return env

    def start(self) -> None:
        port = self.mapping[GATEWAY_PORT]
        self.gateway = Process(
            [str(self.workdir / ".venv/bin/pesaswitch"), "serve", "--bootstrap"],
            {
                "PESASWITCH_SANDBOX_ALLOW_PRIVATE_URLS": "true",
                "PESASWITCH_PORT": str(port),
                "PESASWITCH_SIMULATOR_DELAY": "1.5",
            },
            self.workdir / "gateway.log",
            cwd=self.workdir,
            env_base=self.base_env,
        )
        self.gateway.wait_http(f"http://127.0.0.1:{port}/healthz")
        self._shell_log = (self.workdir / "shell.log").open("w")
        self.shell = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=self._shell_log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self.base_env,
            text=True,
            start_new_session=True,
        )
        self._send(PRELUDE)

    def _send(self, command: str) -> None:
        assert self.shell is not None
        assert self.shell.stdin is not None
        self.shell.stdin.write(command)
        self.shell.stdin.flush()

    def run_all(self) -> None:
        for index, block in enumerate(self.blocks):
            if block.runs and block.mode is not Mode.GATEWAY:
                self.run_block(index, block)
                self.ran += 1
        for block, out in self.background:
            if block.expected is not None:
                self._check_background(block, out)

    def run_block(self, index: int, block: Block) -> None:
        script = self.workdir / "blocks" / f"{index:02d}.sh"
        text = rewrite_ports(block.text, self.mapping)
        if block.mode is Mode.BACKGROUND:  # a server's port argument: `receiver.py 8081`
            text = re.sub(r"\b(\d{4,5})\b", lambda m: self._bare_port(m.group(1)), text)
        script.write_text(text)
        out, err, done = (self.workdir / "out" / f"{index:02d}.{s}" for s in ("out", "err", "rc"))
        if block.mode is Mode.BACKGROUND:
            self._send(f"( source {script} ) > {out} 2> {err} &\n")
            self.background.append((block, out))
            self._wait_for_ports(block, err)
        if block.mode is Mode.RUN:
            self._send(f"source {script} > {out} 2> {err}\n")
        elif block.mode is Mode.HTTP_ERROR:
            self._send(f"unset -f curl; source {script} > {out} 2> {err}; {CURL}\n")
        self._send(f"echo ok > {done}\n")
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while not done.exists():
            assert self.shell is not None
            if self.shell.poll() is not None or time.monotonic() > deadline:
                self.fail(block, out, err, "failed" if self.shell.poll() is not None else "hung")
            time.sleep(0.05)
        if block.mode in (Mode.RUN, Mode.HTTP_ERROR) and block.expected is not None:
            problem = answers.compare(rewrite_ports(block.expected, self.mapping), out.read_text())
            if problem:
                self.fail(block, out, err, f"printed another answer: {problem}")

    def _bare_port(self, number: str) -> str:
        return str(self.mapping.get(int(number), int(number)))

    def _wait_for_ports(self, block: Block, err: Path) -> None:
        named = {int(n) for n in re.findall(r"\b(\d{4,5})\b", block.text)}
        wanted = [self.mapping[p] for p in sorted(named & set(self.mapping))]
        if not wanted:
            raise WalkthroughError(f"{self.name}:{block.line}: a server on no port of the page")
        deadline = time.monotonic() + 30
        for port in wanted:
            while not _listening(port):
                if time.monotonic() > deadline:
                    raise WalkthroughError(
                        f"{self.name}:{block.line}: nothing on port {port}\n{err.read_text()}"
                    )
                time.sleep(0.05)

    def _check_background(self, block: Block, out: Path) -> None:
        deadline = time.monotonic() + 20
        while True:
            expected = rewrite_ports(block.expected or "", self.mapping)
            problem = answers.contains(expected, out.read_text())
            if problem is None:
                return
            if time.monotonic() > deadline:
                raise WalkthroughError(f"{self.name}:{block.line}: the server {problem}")
            time.sleep(0.2)

    def fail(self, block: Block, out: Path, err: Path, what: str) -> None:
        gateway = self.gateway.output()[-2000:] if self.gateway else ""
        raise WalkthroughError(
            f"{self.name}, the block at line {block.line} {what}:\n{block.text}\n"
            f"--- stdout\n{_read(out)}\n--- stderr\n{_read(err)}\n--- gateway log\n{gateway}"
        )

    def stop(self) -> None:
        if self.shell is not None:
            if self.shell.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    self.shell.stdin.close()
            # The shell's session holds the background servers the page started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.shell.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.shell.wait(timeout=10)
            if self.shell.poll() is None:
                os.killpg(self.shell.pid, signal.SIGKILL)
                self.shell.wait(timeout=10)
            self._shell_log.close()
        if self.gateway is not None:
            self.gateway.stop()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _read(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""
