"""The API refuses what a web page could make the user's browser send: cross-site writes,
form and text bodies to JSON endpoints, and foreign Host names (DNS rebinding).

The real server on a free 127.0.0.1 port, with the fake models of rag.testing; each refused
request is checked to have saved and started nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from api.app import create_app
from api.origin import allowed_hosts, host_name
from api.testing import RunningServer, serve_in_thread
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, write_index

TEXT = {"tower.md": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."}
FILES = [("files", ("evil.txt", b"planted text", "text/plain"))]


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    s = Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache",
                 parse_workers=1, abstain_threshold=0.2, reader=False, **kw)
    write_index(s.index_path("docs"), TEXT, FakeEncoder(), chunk_tokens=128, chunk_overlap=32)
    (s.index_path("docs") / "documents").mkdir()
    return s


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = make_settings(tmp_path, api_allowed_hosts=["docs.lan"])
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=FakeGenerator())) as srv:
        yield srv


def untouched(srv: RunningServer) -> None:
    settings = srv.app.state.service.settings
    assert list((settings.indexes_dir / "docs" / "documents").iterdir()) == []
    assert sorted(p.name for p in settings.indexes_dir.iterdir()) == ["docs"]
    assert srv.app.state.service.jobs.last("docs") is None


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://localhost:1"},  # another local port is another origin
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
])
def test_cross_site_writes_are_refused_and_save_nothing(server: RunningServer,
                                                        headers: dict[str, str]) -> None:
    with httpx.Client(base_url=server.url, timeout=30, headers=headers) as http:
        replies = [
            http.post("/v1/collections/docs/documents", files=FILES),
            http.post("/v1/collections/docs/ingest?rebuild=true", data={"x": "1"}),
            http.post("/v1/collections", json={"name": "planted"}),
            http.delete("/v1/collections/docs"),
            http.post("/v1/chat/completions", content=b'{"model": "docs"}',
                      headers={"Content-Type": "text/plain"}),
        ]
        for r in replies:
            assert r.status_code == 403, (r.request.url, r.text)
            error = r.json()["error"]
            assert error["type"] == "permission_error"
            assert next(iter(headers)) in error["message"] and "\n" not in error["message"]
        # Reading stays allowed: a GET changes nothing, and CORS keeps its reply from the page.
        assert http.get("/v1/collections/docs").status_code == 200
    untouched(server)


def test_same_origin_and_plain_clients_keep_working(server: RunningServer) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        own = {"Origin": server.url, "Sec-Fetch-Site": "same-origin"}
        assert http.post("/v1/collections", json={"name": "mine"}, headers=own).status_code == 201
        # No Origin, no Sec-Fetch-*: curl and scripts, multipart included.
        assert http.post("/v1/collections/docs/documents", files=FILES).status_code == 202
        assert http.post("/v1/collections/docs/ingest").status_code in (202, 409)
    ok = OpenAI(base_url=server.api, api_key="unused", max_retries=0)
    assert ok.chat.completions.create(model="docs", messages=[{"role": "user", "content": "Eiffel Tower?"}])


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_json_endpoints_take_only_json(server: RunningServer, content_type: str) -> None:
    body = b'{"name": "planted"}'
    for path in ("/v1/collections", "/v1/chat/completions", "/v1/search",
                 "/v1/collections/docs/ingest?rebuild=true"):
        r = httpx.post(server.url + path, content=body, headers={"Content-Type": content_type}, timeout=30)
        assert r.status_code == 415, (path, r.text)
        assert "application/json" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/v1/collections/docs/documents", content=b'{"files": []}',
                   headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 415 and "multipart/form-data" in r.json()["error"]["message"]
    untouched(server)


@pytest.mark.parametrize("host", ["attacker.example:8000", "attacker.example", "10.0.0.5:8000",
                                  "localhost.attacker.example"])
def test_foreign_host_is_refused(server: RunningServer, host: str) -> None:
    with httpx.Client(base_url=server.url, timeout=30, headers={"Host": host}) as http:
        for r in (http.get("/v1/collections"), http.get("/health"),
                  http.post("/v1/collections/docs/documents", files=FILES)):
            assert r.status_code == 400, (host, r.text)
            message = r.json()["error"]["message"]
            assert repr(host) in message and "RAG_API_ALLOWED_HOSTS" in message
    untouched(server)


@pytest.mark.parametrize("host", ["localhost:8000", "LOCALHOST", "127.0.0.1:9", "[::1]:8000",
                                  "docs.lan:8000"])
def test_local_and_listed_hosts_are_served(server: RunningServer, host: str) -> None:
    r = httpx.get(server.url + "/v1/collections", headers={"Host": host}, timeout=30)
    assert r.status_code == 200, r.text


def test_allowed_hosts_from_the_bind_address() -> None:
    assert "192.168.1.7" in allowed_hosts("192.168.1.7", [])
    assert "0.0.0.0" not in allowed_hosts("0.0.0.0", [])
    assert allowed_hosts(None, ["Docs.LAN:80"]) >= {"docs.lan", "localhost", "::1"}
    assert host_name("[::1]:8000") == "::1" and host_name("Example.com.:80") == "example.com"


def test_json_bodies_have_a_small_limit(server: RunningServer) -> None:
    big = {"model": "docs", "messages": [{"role": "user", "content": "x" * (2**20 + 10)}]}
    r = httpx.post(server.url + "/v1/chat/completions", json=big, timeout=30)
    assert r.status_code == 413 and "JSON body is larger than 1 MB" in r.json()["error"]["message"]
    # Uploads keep their own limit, far above it.
    r = httpx.post(server.url + "/v1/collections/docs/documents", timeout=30,
                   files=[("files", ("long.txt", b"words " * 250_000, "text/plain"))])
    assert r.status_code == 202, r.text
