"""The real server on a free 127.0.0.1 port, in a thread of this process (tests, scripts).

In-process so tests can hand it the fake models of ``rag.testing``; everything from the
socket up is what ``rag serve`` runs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


@dataclass(frozen=True)
class RunningServer:
    url: str  # http://127.0.0.1:PORT
    app: FastAPI

    @property
    def api(self) -> str:
        return f"{self.url}/v1"


@contextmanager
def serve_in_thread(app: FastAPI, *, start_timeout: float = 20.0) -> Iterator[RunningServer]:
    # Bound here and handed to uvicorn: no window in which another process takes the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the API server did not start")
        time.sleep(0.01)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def wait_for_job(client: httpx.Client, collection: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the collection's job until it, and any follow-up queued behind it, are done;
    the last one's final state."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/v1/collections/{collection}/job")
        r.raise_for_status()
        job: dict[str, Any] = r.json()["job"]
        if job["state"] != "running" and r.json().get("queued") is None:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job['label']!r} on {collection!r} still running after {timeout:.0f} s")
        time.sleep(0.05)
