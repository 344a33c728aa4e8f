"""What the API's replies say: no server paths, bounded questions, one reply per upload
that matches what happened to it.

The real server on a free 127.0.0.1 port, with the fake models of rag.testing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.errors import hide_paths
from api.testing import RunningServer, serve_in_thread, wait_for_job
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, write_index

TEXT = {"tower.md": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."}


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    s = Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache",
                 parse_workers=1, abstain_threshold=0.2, reader=False, **kw)
    write_index(s.index_path("docs"), TEXT, FakeEncoder(), chunk_tokens=128, chunk_overlap=32)
    (s.index_path("docs") / "documents").mkdir()
    return s


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with serve_in_thread(create_app(make_settings(tmp_path), encoder=FakeEncoder(),
                                    generator=FakeGenerator())) as srv:
        yield srv


def test_no_server_path_in_any_reply(server: RunningServer, tmp_path: Path) -> None:
    docs = server.app.state.service.settings.indexes_dir / "docs" / "documents"
    (docs / "sub").mkdir()
    (docs / "sub" / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    (docs / ".hidden.md").write_text("skipped")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        replies = [http.post("/v1/collections/docs/documents",
                             files=[("files", ("a.md", b"# Notes\n\nSome words.", "text/markdown")),
                                    ("files", ("../../etc/b.exe", b"x", "application/octet-stream"))])]
        job = wait_for_job(http, "docs")
        replies += [http.get("/v1/collections/docs/job"), http.get("/v1/collections/docs"),
                    http.get("/v1/collections"), http.get("/v1/collections/docs/documents"),
                    http.post("/v1/collections/docs/ingest")]
        wait_for_job(http, "docs")
        replies.append(http.get("/v1/collections/docs/job"))
    assert job["summary"]["index"] == "docs"
    failed = {f["path"] for f in job["summary"]["files_failed"]}
    assert failed == {"sub/broken.pdf"}, job["summary"]
    for r in replies:
        assert r.status_code < 300, r.text
        assert str(tmp_path) not in r.text and "/indexes/" not in r.text, r.text


def test_hide_paths() -> None:
    roots = [(Path("/srv/idx/docs/documents"), ""), (Path("/srv/idx"), "")]
    assert hide_paths("cannot read /srv/idx/docs/documents/a/b.pdf: bad", roots) == "cannot read a/b.pdf: bad"
    denied = "[Errno 13] Permission denied:"
    assert hide_paths(f"{denied} '/var/lib/x/y.tmp'") == f"{denied} 'y.tmp'"
    # Not paths: API routes in our own messages, URLs, relative names.
    text = "see http://h/a/b and ./rel/x"
    assert hide_paths(text) == text


def test_chat_messages_have_a_length_limit(server: RunningServer) -> None:
    body = {"model": "docs", "messages": [{"role": "user", "content": "why? " * 5_000}]}
    r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "messages[0].content" and "characters" in error["message"]
    assert len(json.dumps(error)) < 600


def test_concurrent_uploads_are_all_queued_and_all_ingested(tmp_path: Path) -> None:
    gate = threading.Event()

    class GatedEncoder(FakeEncoder):
        def embed(self, texts: Sequence[str]) -> Any:
            if any("Document number" in t for t in texts):
                gate.wait(10)  # hold the first ingestion job while the other uploads arrive
            return super().embed(texts)

    def upload(i: int) -> httpx.Response:
        text = f"Document number {i} talks about topic{i} at length.".encode()
        return httpx.post(srv.url + "/v1/collections/docs/documents", timeout=30,
                          files=[("files", (f"d{i}.txt", text, "text/plain"))])

    app = create_app(make_settings(tmp_path), encoder=GatedEncoder(), generator=FakeGenerator())
    with serve_in_thread(app) as srv:
        with ThreadPoolExecutor(4) as pool:
            replies = list(pool.map(upload, range(4)))
        assert [r.status_code for r in replies] == [202] * 4, [r.text for r in replies]
        jobs = sorted((r.json()["job"]["state"], r.json()["job"]["id"]) for r in replies)
        # One job runs; the other three share one follow-up that reads all their files.
        assert [state for state, _ in jobs] == ["queued"] * 3 + ["running"], jobs
        assert len({job_id for _, job_id in jobs}) == 2
        gate.set()
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            assert wait_for_job(http, "docs")["state"] == "succeeded"
            docs = {d["name"]: d["status"] for d in http.get("/v1/collections/docs/documents").json()}
    assert docs == {f"d{i}.txt": "ready" for i in range(4)}, docs
