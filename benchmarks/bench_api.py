"""Throughput and latency of the HTTP API: /v1/search and answers, at 1, 4 and 16 clients.

Starts `rag serve` (real default models) on a free 127.0.0.1 port in a subprocess, uploads
three documents of the sample corpus through the API, waits for ingestion, then runs
closed-loop clients (each sends its next request when the last one is answered) at each
concurrency level. Prints requests/s and p50/p95 latency per level; 429 answers (queue
full, RAG_API_MAX_QUEUE) and errors are counted, never timed.

    python benchmarks/bench_api.py [--clients 1 4 16]
        [--search-requests 64] [--answer-requests 16] [--only search|answer]
        [--url http://127.0.0.1:8000 --collection NAME]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import ROOT

SAMPLE = ROOT / "corpora" / "sample"
DOCUMENTS = ["Steam_engine.txt", "Oxygen.md", "Apollo_program.html"]
QUESTIONS = [
    "Who patented the first practical steam engine?",
    "What is the boiling point of oxygen?",
    "Who discovered oxygen?",
    "When did Apollo 11 land on the Moon?",
    "What was the Saturn V?",
    "What is a condenser in a steam engine used for?",
    "Which element is the most abundant in the Earth's crust?",
    "How many astronauts walked on the Moon?",
]


@dataclass
class Level:
    kind: str
    clients: int
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rejected: int = 0  # 429
    errors: list[str] = field(default_factory=list)

    def row(self) -> str:
        ok = len(self.latencies)
        rps = ok / self.wall_s if self.wall_s else 0.0
        q = sorted(self.latencies)
        p50 = statistics.median(q) if q else float("nan")
        p95 = q[min(len(q) - 1, round(0.95 * (len(q) - 1)))] if q else float("nan")
        return (f"| {self.kind} | {self.clients} | {ok} | {rps:.2f} | {p50 * 1000:.0f} | {p95 * 1000:.0f} | "
                f"{self.rejected} | {len(self.errors)} |")


def run_level(kind: str, clients: int, total: int, send: Callable[[httpx.Client, int], httpx.Response],
              base: str, headers: dict[str, str]) -> Level:
    level = Level(kind, clients)
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                try:
                    r = send(http, i)
                except httpx.HTTPError as e:
                    with lock:
                        level.errors.append(repr(e))
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        level.latencies.append(dt)
                    elif r.status_code == 429:
                        level.rejected += 1
                    else:
                        level.errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    level.wall_s = time.perf_counter() - t0
    return level


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(indexes: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "RAG_INDEXES_DIR": str(indexes), "PYTHONPATH": str(ROOT)}
    env.pop("RAG_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "rag_cli.main", "serve", "--port", str(port)],
                            cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit("rag serve did not start")
        time.sleep(0.5)


def prepare(url: str, name: str, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=600) as http:
        http.post("/v1/collections", json={"name": name}).raise_for_status()
        files = [("files", (d, (SAMPLE / d).read_bytes(), "application/octet-stream")) for d in DOCUMENTS]
        http.post(f"/v1/collections/{name}/documents", files=files).raise_for_status()
        t0 = time.perf_counter()
        while (job := http.get(f"/v1/collections/{name}/job").json()["job"])["state"] == "running":
            time.sleep(0.5)
        if job["state"] != "succeeded":
            raise SystemExit(f"ingestion failed: {job['error']}")
        s = job["summary"]
        print(f"ingested {s['files_ok']} documents, {s['total_chunks']} passages in "
              f"{time.perf_counter() - t0:.1f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--search-requests", type=int, default=64, help="per level")
    ap.add_argument("--answer-requests", type=int, default=16, help="per level (at least one per client)")
    ap.add_argument("--only", choices=["search", "answer"], help="measure one endpoint only")
    ap.add_argument("--url", help="an already running server (else `rag serve` is started)")
    ap.add_argument("--collection", default="bench", help="with --url: an indexed collection")
    ap.add_argument("--token", default=os.environ.get("RAG_API_TOKEN"), help="bearer token, if any")
    args = ap.parse_args()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}

    proc = None
    with tempfile.TemporaryDirectory(prefix="docchat-bench-api-") as tmp:
        try:
            if args.url:
                url = args.url.rstrip("/")
            else:
                t0 = time.perf_counter()
                proc, url = start_server(Path(tmp))
                print(f"rag serve ready in {time.perf_counter() - t0:.1f} s (models loaded)")
                prepare(url, args.collection, headers)
            name = args.collection

            def search(http: httpx.Client, i: int) -> httpx.Response:
                query = QUESTIONS[i % len(QUESTIONS)]
                return http.post("/v1/search", json={"collection": name, "query": query})

            def answer(http: httpx.Client, i: int) -> httpx.Response:
                return http.post("/v1/chat/completions", json={
                    "model": name, "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]})

            # One warm-up of each: first-call costs (lazy imports, caches) are not throughput.
            run_level("warm-up", 1, 2, lambda h, i: (search if i == 0 else answer)(h, i), url, headers)
            rows = []
            for kind, send, total in (("search", search, args.search_requests),
                                      ("answer", answer, args.answer_requests)):
                if args.only not in (None, kind):
                    continue
                for c in args.clients:
                    level = run_level(kind, c, max(total, c), send, url, headers)
                    rows.append(level.row())
                    print(rows[-1], flush=True)
                    for e in level.errors[:3]:
                        print("   error:", e)
            print("\n| endpoint | clients | requests | req/s | p50 ms | p95 ms | 429 | errors |")
            print("|---|---|---|---|---|---|---|---|")
            print("\n".join(rows))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
