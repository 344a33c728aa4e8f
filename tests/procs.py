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
        stop_tree(proc)
        if log is not None and hasattr(out, "close"):
            out.close()


def stop_tree(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc``, its process group and every descendant (Ray's workers start sessions
    of their own, so the group alone would leave them running on the shared cores)."""
    import psutil

    try:
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(tree, timeout=10)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


# --- the servers, as fixtures the scale tests import -----------------------------------------


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus server (milvus-lite's gRPC server: the Milvus API in one process)."""
    tmp = tmp_path_factory.mktemp("milvus")
    port = free_port()
    args = python("-m", "milvus_lite", "server", "--data-dir", str(tmp / "data"), "--port", str(port),
                  "--host", "127.0.0.1")
    with process(args, lambda: port_open(port), log=tmp / "milvus.log"):
        yield f"http://127.0.0.1:{port}"


RAY = str(Path(sys.executable).with_name("ray"))


def ray_nodes(address: str) -> int:
    got = subprocess.run([RAY, "status", "--address", address], capture_output=True, text=True,
                         timeout=30, check=False)
    active = got.stdout.split("Active:")[-1].split("Pending:")[0]
    return active.count("node_") if got.returncode == 0 else 0


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head and a second Ray node on this machine: two ``ray start`` processes."""
    tmp = tmp_path_factory.mktemp("ray")
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus", "2", "--object-store-memory", str(200 * 2**20),
              "--disable-usage-stats", "--dashboard-agent-listen-port", str(free_port())]
    env = {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    head = [RAY, "start", "--head", "--port", str(port), "--include-dashboard=false",
            "--ray-client-server-port", str(free_port()), "--temp-dir", str(tmp / "r"), *common]
    worker = [RAY, "start", "--address", address, *common]
    with process(head, lambda: port_open(port), timeout=120, log=tmp / "head.log", env=env), \
            process(worker, lambda: ray_nodes(address) >= 2, timeout=120, log=tmp / "node.log", env=env):
        try:
            yield address
        finally:
            import ray

            if ray.is_initialized():
                ray.shutdown()  # this process's driver leaves before the nodes go
