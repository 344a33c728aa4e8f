"""Starting and stopping the real servers the scale tests talk to (separate processes)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def process(args: list[str], ready: Callable[[], bool], *, timeout: float = 60,
            log: Path | None = None, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` in its own process group until the block ends; wait for ``ready()``."""
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    proc = subprocess.Popen(args, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log is not None else ""
                pytest.fail(f"{args[:4]} did not start (exit {proc.poll()}): {tail}")
            time.sleep(0.3)
        yield proc
    finally:
        # The whole group: servers may have started children of their own.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if log is not None and hasattr(out, "close"):
            out.close()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
