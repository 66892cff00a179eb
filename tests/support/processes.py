"""Starting the real programs (gateway, worker, simulator) as processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

PESASWITCH = str(Path(sys.executable).parent / "pesaswitch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env_base: Mapping[str, str] | None = None,
    ) -> None:
        self.args = args
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.popen = subprocess.Popen(
            args,
            env={**(os.environ if env_base is None else env_base), **env},
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_http(self, url: str, timeout: float = 90.0) -> None:
        """Until ``url`` answers 200; at once if the process exits. Starting is CPU work
        (imports, migrations, uvicorn's workers), so on a shared 2-core machine it takes
        from 2 s to over 20 s: the bound is for a process that hangs, not a speed test."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.args} exited early:\n{self.output()}")
            try:
                if httpx.get(url, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{url} not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def _signal_group(self, sig: signal.Signals) -> None:
        # The whole session: `make run` starts `pesaswitch serve` as a child, which a
        # signal to make alone would leave running.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        self._signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()
