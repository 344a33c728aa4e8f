"""The API's edges: the token, bad requests named by field, bounded overload, one decoder.

The real server on a free 127.0.0.1 port, with the fake models of rag.testing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import APIError, AuthenticationError, OpenAI
from pydantic import SecretStr

from api.app import create_app
from api.service import LockedEncoder
from api.testing import RunningServer, serve_in_thread, wait_for_job
from rag.answer.chain import ABSTAIN_TEXT
from rag.settings import Settings, is_loopback
from rag.testing import FakeEncoder, FakeGenerator, write_index
from rag.types import DecodingParams
from rag_cli.main import main as rag_main

TOKEN = "s3cret-token"
TEXT = {"tower.md": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris."}
QUESTION = "When was the Eiffel Tower completed?"


class SlowGenerator(FakeGenerator):
    """The fake reader, one word per ``delay`` seconds, recording how many streams overlap."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.active = 0
        self.most_active = 0
        self._count = threading.Lock()

    def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]:
        with self._count:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            for piece in super().stream(messages, params):
                time.sleep(self.delay)
                yield piece
        finally:
            with self._count:
                self.active -= 1


def make_settings(tmp_path: Path, **kw: Any) -> Settings:
    s = Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache",
                 parse_workers=1, abstain_threshold=0.2, reader=False, **kw)
    encoder = FakeEncoder()
    # Chunk sizes as ingestion with the fake encoder makes them, so jobs can add to it.
    write_index(s.index_path("docs"), TEXT, encoder, chunk_tokens=128, chunk_overlap=32)
    (s.index_path("docs") / "documents").mkdir()
    return s


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[RunningServer]:
    with serve_in_thread(create_app(make_settings(tmp_path), encoder=FakeEncoder(),
                                    generator=FakeGenerator())) as srv:
        yield srv


def chat(model: str = "docs", question: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


# --- authentication ----------------------------------------------------------------------------


def test_token_required_and_nothing_touched(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_token=SecretStr(TOKEN))
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=FakeGenerator())) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = http.post("/v1/collections", json={"name": "new"}, headers=headers)
            assert r.status_code == 401, headers
            assert "Bearer" in r.json()["error"]["message"] and r.headers["www-authenticate"] == "Bearer"
            r = http.post("/v1/collections/docs/documents", headers=headers,
                          files=[("files", ("a.txt", b"some text", "text/plain"))])
            assert r.status_code == 401
            assert http.post("/v1/chat/completions", json=chat(), headers=headers).status_code == 401
            assert http.get("/v1/models", headers=headers).status_code == 401
        assert not (settings.indexes_dir / "new").exists()
        assert list((settings.indexes_dir / "docs" / "documents").iterdir()) == []
        assert srv.app.state.service.jobs.last("docs") is None
        # The API description stays readable, so a user can see how to authenticate.
        assert http.get("/docs").status_code == 200 and http.get("/openapi.json").status_code == 200

        good = {"Authorization": f"Bearer {TOKEN}"}
        assert http.post("/v1/collections", json={"name": "new"}, headers=good).status_code == 201
    # OpenAI clients send their api_key as exactly this bearer token.
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=FakeGenerator())) as srv:
        ok = OpenAI(base_url=srv.api, api_key=TOKEN, max_retries=0)
        assert ok.chat.completions.create(model="docs", messages=[{"role": "user", "content": QUESTION}])
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=srv.api, api_key="nope", max_retries=0).models.list()


def test_serve_refuses_public_address_without_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RAG_API_TOKEN", raising=False)
    assert rag_main(["serve", "--address", "0.0.0.0", "--port", "8765"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "RAG_API_TOKEN" in err and "0.0.0.0" in err
    assert rag_main(["serve", "--port", "0"]) == 2
    assert "not a TCP port" in capsys.readouterr().err
    monkeypatch.setenv("RAG_K", "many")  # a bad setting: one line naming it, not pydantic's page
    assert rag_main(["serve"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "RAG_K" in err and "'many'" in err, err


@pytest.mark.parametrize(("address", "local"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.5", False), ("::", False), ("myhost.example", False),
])
def test_is_loopback(address: str, local: bool) -> None:
    assert is_loopback(address) is local


# --- bad requests --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "status", "param"), [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}, 400, "model"),
    ("/v1/chat/completions", chat() | {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", chat() | {"messages": [{"role": "assistant", "content": "hi"}]}, 400,
     "messages"),
    ("/v1/chat/completions", chat() | {"messages": [{"role": "tool", "content": "x"}]}, 400,
     "messages[0].role"),
    ("/v1/chat/completions", chat(question="   "), 400, "messages[0].content"),
    ("/v1/chat/completions", chat() | {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, 400, "messages[0].content[0]"),
    ("/v1/chat/completions", chat(k=0), 400, "k"),
    ("/v1/chat/completions", chat(retriever="fuzzy"), 400, "retriever"),
    ("/v1/chat/completions", chat(temperature=-1), 400, "temperature"),
    ("/v1/chat/completions", chat(max_tokens=0), 400, "max_tokens"),
    ("/v1/chat/completions", chat(n=2), 400, "n"),
    ("/v1/chat/completions", chat(model="nope"), 404, "model"),
    ("/v1/chat/completions", chat(model="../etc"), 400, "model"),
    ("/v1/search", {"collection": "docs", "query": ""}, 400, "query"),
    ("/v1/search", {"collection": "docs", "query": "x", "mode": "fuzzy"}, 400, "mode"),
    ("/v1/search", {"collection": "docs", "query": "x", "kk": 3}, 400, "kk"),
    ("/v1/search", {"query": "x"}, 400, "collection"),
    ("/v1/collections", {"name": "a b"}, 400, "name"),
    ("/v1/collections", {"name": "docs"}, 409, "name"),
])
def test_bad_requests_name_the_field(plain: RunningServer, path: str, body: dict[str, Any],
                                     status: int, param: str) -> None:
    r = httpx.post(plain.url + path, json=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param
    assert error["message"]


def test_malformed_and_unknown(plain: RunningServer) -> None:
    r = httpx.post(plain.url + "/v1/chat/completions", content=b"{not json", timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.get(plain.url + "/v1/nothing-here", timeout=30)
    assert r.status_code == 404 and "/docs" in r.json()["error"]["message"]
    r = httpx.delete(plain.url + "/v1/collections/docs/documents/missing.pdf", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["param"] == "document"
    r = httpx.post(plain.url + "/v1/collections/nope/documents", timeout=30,
                   files=[("files", ("a.txt", b"x", "text/plain"))])
    assert r.status_code == 404


def test_oversized_upload_is_refused_before_reading(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_file_mb=0.001)  # ~1 KB per file
    app = create_app(settings, encoder=FakeEncoder(), generator=FakeGenerator())
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        r = http.post("/v1/collections/docs/documents",
                      files=[("files", ("big.txt", b"word " * 400, "text/plain"))])
        assert r.status_code == 202
        [result] = r.json()["results"]
        assert result["outcome"] == "rejected" and "RAG_MAX_FILE_MB" in result["message"]
        # A body beyond what any upload may carry is cut off at the door.
        r = http.post("/v1/collections/docs/documents",
                      files=[("files", ("huge.txt", b"x" * 2_000_000, "text/plain"))])
        assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]
        assert list((settings.indexes_dir / "docs" / "documents").iterdir()) == []


# --- overload and sharing ------------------------------------------------------------------------


def test_burst_beyond_the_queue_gets_429_and_one_decoder_at_a_time(tmp_path: Path) -> None:
    gate = threading.Event()

    class GatedGenerator(SlowGenerator):
        def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]:
            gate.wait(20)  # hold every answer until the burst is over
            yield from super().stream(messages, params)

    gated = GatedGenerator(delay=0.01)
    settings = make_settings(tmp_path, api_max_queue=3)
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=gated)) as srv, \
            ThreadPoolExecutor(max_workers=3) as pool:
        def health() -> dict[str, Any]:
            return httpx.get(srv.url + "/health", timeout=30).json()  # type: ignore[no-any-return]

        inside = [pool.submit(httpx.post, srv.api + "/chat/completions", json=chat(stream=i == 1), timeout=60)
                  for i in range(3)]
        deadline = time.monotonic() + 10
        while health()["requests_inside"] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert health()["requests_inside"] == 3
        burst = [httpx.post(srv.api + "/chat/completions", json=chat(stream=i % 2 == 1), timeout=30)
                 for i in range(5)]
        burst.append(httpx.post(srv.api + "/search", json={"collection": "docs", "query": "x"}, timeout=30))
        assert [r.status_code for r in burst] == [429] * 6
        assert burst[0].headers["retry-after"] == "1"
        assert "RAG_API_MAX_QUEUE" in burst[0].json()["error"]["message"]
        gate.set()
        assert [f.result().status_code for f in inside] == [200, 200, 200]
        assert gated.most_active == 1  # three answers in the server, one decoder at a time
        # The slots came back: the server answers again, and reports nobody inside.
        assert httpx.post(srv.api + "/chat/completions", json=chat(), timeout=30).status_code == 200
        assert health()["requests_inside"] == 0


def test_client_leaving_a_stream_stops_the_decoder(tmp_path: Path) -> None:
    slow = SlowGenerator(delay=0.2)
    slow.script = " ".join(f"word{i}" for i in range(30))
    settings = make_settings(tmp_path, max_new_tokens=30)
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=slow)) as srv:
        with httpx.stream("POST", srv.api + "/chat/completions", json=chat(stream=True), timeout=30) as r:
            for line in r.iter_lines():
                if "word1" in line:
                    break  # hang up after two words
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not httpx.get(srv.url + "/health", timeout=30).json()["requests_inside"]:
                break
            time.sleep(0.05)
        assert httpx.get(srv.url + "/health", timeout=30).json()["requests_inside"] == 0
        assert slow.active == 0
        assert time.monotonic() < deadline  # well before the 6 s the whole answer takes


def test_encoder_lets_a_question_in_between_an_ingestion_s_batches() -> None:
    calls: list[int] = []

    class Recording(FakeEncoder):
        def embed(self, texts: Sequence[str]) -> Any:
            calls.append(len(texts))
            time.sleep(0.01)
            return super().embed(texts)

    encoder = LockedEncoder(Recording(), batch_size=4)
    bulk = threading.Thread(target=encoder.embed, args=([f"passage {i}" for i in range(80)],))
    bulk.start()
    while not calls:
        time.sleep(0.001)
    query = encoder.embed(["a question"])
    bulk.join()
    assert query.shape == (1, encoder.dimension)
    assert sorted(calls) == [1] + [4] * 20
    assert calls.index(1) < 10  # served after a batch or so, not after all twenty


def test_ingestion_job_queues_a_second_upload_and_blocks_other_writers(tmp_path: Path) -> None:
    gate = threading.Event()

    class GatedEncoder(FakeEncoder):
        def embed(self, texts: Sequence[str]) -> Any:
            if len(texts) > 1 or "The espresso" in texts[0]:  # (after its chunk header)
                gate.wait(10)  # hold the ingestion job, not the query encoder
            return super().embed(texts)

    settings = make_settings(tmp_path)
    app = create_app(settings, encoder=GatedEncoder(), generator=FakeGenerator())
    with serve_in_thread(app) as srv, httpx.Client(base_url=srv.url, timeout=30) as http:
        files = [("files", ("m.txt", b"The espresso machine warranty lasts 24 months.", "text/plain"))]
        assert http.post("/v1/collections/docs/documents", files=files).status_code == 202
        r = http.post("/v1/collections/docs/documents",
                      files=[("files", ("n.txt", b"Other text entirely.", "text/plain"))])
        assert r.status_code == 202 and r.json()["job"]["state"] == "queued"
        assert http.delete("/v1/collections/docs").status_code == 409
        assert http.post("/v1/collections/docs/ingest").status_code == 409
        now = http.get("/v1/collections/docs/job").json()
        assert now["job"]["state"] == "running" and now["queued"]["id"] == r.json()["job"]["id"]
        gate.set()
        assert wait_for_job(http, "docs")["id"] == r.json()["job"]["id"]
        docs = {d["name"]: d["status"] for d in http.get("/v1/collections/docs/documents").json()}
        assert docs == {"m.txt": "ready", "n.txt": "ready"}, docs


def test_unbacked_reply_is_never_streamed_only_the_final_answer(tmp_path: Path) -> None:
    # The decoder says it does not know: the chain checks a reply before any of it is
    # streamed, so the client reads the refusal alone, never words taken back later.
    unsure = FakeGenerator(script="I don't know.")
    with serve_in_thread(create_app(make_settings(tmp_path), encoder=FakeEncoder(), generator=unsure)) as srv:
        client = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
        messages: Any = [{"role": "user", "content": QUESTION}]
        chunks = list(client.chat.completions.create(model="docs", messages=messages, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        final = (chunks[-1].model_extra or {})["docchat"]
        assert final["abstained"] and final["answer"] == ABSTAIN_TEXT
        assert text == ABSTAIN_TEXT
        plain = client.chat.completions.create(model="docs", messages=messages)
        assert plain.choices[0].message.content == ABSTAIN_TEXT


def test_a_failing_decoder_is_a_json_error_not_a_hang(tmp_path: Path) -> None:
    class Broken(FakeGenerator):
        def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]:
            yield "Half"
            raise RuntimeError("decoder crashed")

    app = create_app(make_settings(tmp_path), encoder=FakeEncoder(), generator=Broken())
    with serve_in_thread(app) as srv:
        r = httpx.post(srv.api + "/chat/completions", json=chat(), timeout=30)
        assert r.status_code == 500 and "decoder crashed" in r.json()["error"]["message"]
        client = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
        with pytest.raises(APIError, match="decoder crashed"):
            list(client.chat.completions.create(model="docs", stream=True,
                                                messages=[{"role": "user", "content": QUESTION}]))
        assert httpx.get(srv.url + "/health", timeout=30).json()["requests_inside"] == 0
