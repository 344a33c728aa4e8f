"""`rag ui`: the Streamlit command line it runs, and bad flags refused before starting."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import ClassVar

import psutil
import pytest

from rag.settings import Settings
from ui import launch

REPO = Path(__file__).resolve().parent.parent


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    launch.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_command_line() -> None:
    cmd = launch.streamlit_command(_args("--port", "9123", "--index", "notes"), Settings(max_file_mb=2.5))
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(launch.APP_PATH)]
    assert launch.APP_PATH.name == "app.py" and launch.APP_PATH.is_file()
    opts = cmd[5 : cmd.index("--")]
    flags = dict(zip(opts[::2], opts[1::2], strict=True))
    assert flags["--server.headless"] == "true"
    assert flags["--server.port"] == "9123"
    assert flags["--server.maxUploadSize"] == "3"  # whole MB, rounded up
    assert flags["--browser.gatherUsageStats"] == "false"
    assert cmd[cmd.index("--") :] == ["--", "--collection", "notes"]


class FakePopen:
    started: ClassVar[list[list[str]]] = []

    def __init__(self, cmd: list[str]) -> None:
        FakePopen.started.append(cmd)
        self.signals: list[int] = []

    def wait(self) -> int:
        return 3

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)


def test_run_returns_streamlit_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    FakePopen.started = []
    assert launch.run(_args("--port", "8600")) == 3
    assert FakePopen.started and "--server.port" in FakePopen.started[0]


def test_rag_ui_starts_a_server_and_sigterm_stops_it(tmp_path: Path) -> None:
    """The real thing, minus the browser: `python -m rag_cli.main ui` serves the app, and
    stopping the launcher stops Streamlit (no orphan keeping the port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "RAG_INDEXES_DIR": str(tmp_path / "indexes"), "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "rag_cli.main", "ui", "--port", str(port), "--address", "127.0.0.1"]
    proc = subprocess.Popen(
        [*cmd, "--index", "smoke"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    pytest.fail(f"`rag ui` did not serve: {out[-2000:]}")
                time.sleep(0.5)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert any("streamlit" in " ".join(c.cmdline()) for c in children)
    finally:
        proc.terminate()
        assert proc.wait(20) in (0, -signal.SIGTERM, 143)
    psutil.wait_procs(children, timeout=20)
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


@pytest.mark.parametrize("argv", [["--index", "../etc"], ["--port", "70000"]])
def test_bad_flags_exit_2_without_starting(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(subprocess, "Popen", lambda cmd: pytest.fail("must not start"))
    assert launch.run(_args(*argv)) == 2
    assert "rag ui:" in capsys.readouterr().err
