"""The HTTP API through the clients users' programs use: plain HTTP, OpenAI's, LangChain's.

The real server (uvicorn, on a free 127.0.0.1 port) with the fake models of rag.testing;
everything else is real: uploads, ingestion jobs, the on-disk index and rag.answer.chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_openai import ChatOpenAI
from openai import OpenAI

from api.app import create_app
from api.testing import RunningServer, serve_in_thread, wait_for_job
from rag.answer.chain import ABSTAIN_TEXT
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator

PDF = Path(__file__).resolve().parent / "data" / "pdfs" / "multicolumn.pdf"  # page 3: a table of EU capitals
ESPRESSO = (b"The espresso machine warranty lasts 24 months from the date of purchase. "
            b"Descaling every month keeps the boiler clean.\n")
# Short enough for the hashed bag-of-words fake to find page 3 clearly (cosine ~0.3) and to
# share no word with the espresso manual (cosine ~0), so after the PDF is removed the
# question must be refused.
QUESTION = "Austria capital?"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache",
                        parse_workers=1, abstain_threshold=0.2,
                        reader=False)  # the reader is a real model; these use fakes
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=FakeGenerator())) as srv:
        yield srv


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
def docs(http: httpx.Client) -> str:
    """A collection holding the PDF and the espresso manual, ingested."""
    assert http.post("/v1/collections", json={"name": "docs"}).status_code == 201
    r = http.post("/v1/collections/docs/documents", files=[
        ("files", ("multicolumn.pdf", PDF.read_bytes(), "application/pdf")),
        ("files", ("../../espresso manual.txt", ESPRESSO, "text/plain")),
    ])
    assert r.status_code == 202, r.text
    assert [x["outcome"] for x in r.json()["results"]] == ["saved", "saved"]
    # Sanitised as in the app: the path is dropped, the name kept readable.
    assert r.json()["results"][1]["document"] == "espresso manual.txt"
    job = wait_for_job(http, "docs")
    assert job["state"] == "succeeded", job
    assert job["summary"]["files_ok"] == 2
    return "docs"


def ask(http: httpx.Client, question: str, **extra: Any) -> dict[str, Any]:
    r = http.post("/v1/chat/completions", json={
        "model": "docs", "messages": [{"role": "user", "content": question}], **extra})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_upload_ask_remove_ask_again(http: httpx.Client, docs: str, server: RunningServer) -> None:
    listing = {d["name"]: d for d in http.get("/v1/collections/docs/documents").json()}
    assert listing["multicolumn.pdf"]["status"] == "ready" and listing["multicolumn.pdf"]["pages"] == 3
    assert listing["espresso manual.txt"]["passages"] == 1

    body = ask(http, QUESTION)
    grounding = body["docchat"]
    assert not grounding["abstained"]
    top = grounding["sources"][0]
    assert (top["source"], top["page"]) == ("multicolumn.pdf", 3)
    assert "Austria" in top["text"]
    # The fake reader echoes the first sentence of passage [1] and cites it.
    answer = body["choices"][0]["message"]["content"]
    assert answer.endswith("[1]") and grounding["cited"] == [1] and grounding["answer"] == answer

    r = http.delete("/v1/collections/docs/documents/multicolumn.pdf")
    assert r.status_code == 202, r.text
    assert wait_for_job(http, "docs")["state"] == "succeeded"
    assert [d["name"] for d in http.get("/v1/collections/docs/documents").json()] == ["espresso manual.txt"]
    settings: Settings = server.app.state.service.settings
    assert not (settings.indexes_dir / "docs" / "documents" / "multicolumn.pdf").exists()

    again = ask(http, QUESTION)
    assert again["docchat"]["abstained"]
    assert again["choices"][0]["message"]["content"] == ABSTAIN_TEXT
    assert all(s["source"] != "multicolumn.pdf" for s in again["docchat"]["sources"])


def test_openai_client(server: RunningServer, docs: str) -> None:
    client = OpenAI(base_url=server.api, api_key="not-needed-on-localhost", max_retries=0)
    assert "docs" in [m.id for m in client.models.list()]
    messages: Any = [{"role": "user", "content": QUESTION}]

    done = client.chat.completions.create(model="docs", messages=messages)
    text = done.choices[0].message.content
    assert text is not None and text.endswith("[1]")
    extra = done.model_extra or {}
    assert extra["docchat"]["sources"][0]["page"] == 3

    stream = client.chat.completions.create(model="docs", messages=messages, stream=True)
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == text
    assert len(chunks) > 3  # word by word, not one lump
    first, last = chunks[0].model_extra or {}, chunks[-1].model_extra or {}
    # Sources come before the first word (a front end can show them while it streams).
    assert first["docchat"]["sources"][0]["source"] == "multicolumn.pdf"
    assert chunks[-1].choices[0].finish_reason == "stop" and last["docchat"]["cited"] == [1]


def test_langchain_chat_openai(server: RunningServer, docs: str) -> None:
    llm = ChatOpenAI(base_url=server.api, api_key="not-needed", model="docs", max_retries=0)  # type: ignore[arg-type]
    reply = llm.invoke(QUESTION)
    assert isinstance(reply.content, str) and reply.content.endswith("[1]")
    assert "Table 1" in reply.content
    streamed = "".join(str(chunk.content) for chunk in llm.stream(QUESTION))
    assert streamed == reply.content


def test_follow_up_uses_history(http: httpx.Client, docs: str) -> None:
    body = ask(http, "And its area?", messages=[
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Austria capital?"},
        {"role": "assistant", "content": "Vienna [1]"},
        {"role": "user", "content": "And its area?"},
    ])
    assert body["docchat"]["search_query"] == "What is the area of Austria?"


def test_decoding_options_reach_the_reader(http: httpx.Client, docs: str) -> None:
    body = ask(http, QUESTION, max_tokens=2)
    # Two words of the echo, cut short: the fake reader honours max_new_tokens.
    assert body["choices"][0]["message"]["content"].startswith("Table 1:")
    assert "Countries" not in body["choices"][0]["message"]["content"]


def test_search(http: httpx.Client, docs: str) -> None:
    r = http.post("/v1/search", json={"collection": "docs", "query": QUESTION, "k": 2, "mode": "bm25"})
    assert r.status_code == 200, r.text
    passages = r.json()["passages"]
    assert len(passages) <= 2 and passages[0]["rank"] == 1
    assert (passages[0]["source"], passages[0]["page"]) == ("multicolumn.pdf", 3)
    assert passages[0]["bm25_score"] > 0 and passages[0]["score"] == passages[0]["bm25_score"]
    assert isinstance(passages[0]["dense_score"], float)  # the cosine, whatever the mode
    hybrid = http.post("/v1/search", json={"collection": "docs", "query": "espresso warranty"}).json()
    assert hybrid["mode"] == "hybrid" and hybrid["passages"][0]["source"] == "espresso manual.txt"
    assert hybrid["passages"][0]["page"] is None


def test_collections(http: httpx.Client, docs: str, server: RunningServer) -> None:
    assert http.post("/v1/collections", json={"name": "empty"}).status_code == 201
    names = {c["name"]: c for c in http.get("/v1/collections").json()}
    assert names["docs"]["indexed"] and names["docs"]["documents"] == 2 and names["docs"]["passages"] > 2
    assert not names["empty"]["indexed"] and names["empty"]["job"] is None
    # Only collections that can answer are models.
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["docs"]
    one = [{"role": "user", "content": "x"}]
    r = http.post("/v1/chat/completions", json={"model": "empty", "messages": one})
    assert r.status_code == 409 and "no index yet" in r.json()["error"]["message"]

    assert http.delete("/v1/collections/docs").status_code == 204
    assert [c["name"] for c in http.get("/v1/collections").json()] == ["empty"]
    assert not (server.app.state.service.settings.indexes_dir / "docs").exists()
    r = http.post("/v1/chat/completions", json={"model": "docs", "messages": one})
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"


def test_duplicate_and_rejected_uploads(http: httpx.Client, docs: str) -> None:
    r = http.post("/v1/collections/docs/documents", files=[
        ("files", ("copy.txt", ESPRESSO, "text/plain")),
        ("files", ("tool.exe", b"MZ", "application/octet-stream")),
        ("files", ("empty.md", b"", "text/markdown")),
    ])
    assert r.status_code == 202
    results = r.json()["results"]
    assert [x["outcome"] for x in results] == ["duplicate", "rejected", "rejected"]
    assert "already in the collection as 'espresso manual.txt'" in results[0]["message"]
    assert "unsupported file type '.exe'" in results[1]["message"]
    assert r.json()["job"] is None  # nothing new: no ingestion
