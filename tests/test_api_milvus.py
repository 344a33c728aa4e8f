"""``rag serve`` with RAG_STORE=milvus: a stateless app instance over a Milvus server.

The API (real uvicorn in a thread, fake models) keeps uploads in its folder and the index
in Milvus (milvus-lite's server, its own process): upload, ask with page citations,
delete a document, ask again and be refused, as with the FAISS store (tests/test_api.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_api import ESPRESSO, PDF, QUESTION, ask

from api.app import create_app
from api.testing import serve_in_thread, wait_for_job
from rag.settings import Settings
from rag.store.backends import store_exists
from rag.testing import FakeEncoder, FakeGenerator

pytestmark = pytest.mark.scale


@pytest.fixture
def http(tmp_path: Path, milvus_uri: str) -> Iterator[httpx.Client]:
    settings = Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache",
                        parse_workers=1, abstain_threshold=0.2, reader=False, store="milvus",
                        store_uri=milvus_uri, store_prefix="api_test")
    with serve_in_thread(create_app(settings, encoder=FakeEncoder(), generator=FakeGenerator())) as srv, \
            httpx.Client(base_url=srv.url, timeout=60) as client:
        yield client


def test_api_over_milvus_upload_ask_remove(http: httpx.Client, tmp_path: Path, milvus_uri: str) -> None:
    assert http.post("/v1/collections", json={"name": "docs"}).status_code == 201
    r = http.post("/v1/collections/docs/documents", files=[
        ("files", ("multicolumn.pdf", PDF.read_bytes(), "application/pdf")),
        ("files", ("espresso.txt", ESPRESSO, "text/plain"))])
    assert r.status_code == 202, r.text
    assert wait_for_job(http, "docs")["state"] == "succeeded"
    # The index is in Milvus, not in the collection's folder.
    index_dir = tmp_path / "indexes" / "docs"
    assert not (index_dir / "CURRENT").exists()
    assert store_exists(Settings(store="milvus", store_uri=milvus_uri, store_prefix="api_test"), index_dir)
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["docs"]
    listing = {d["name"]: d for d in http.get("/v1/collections/docs/documents").json()}
    assert listing["multicolumn.pdf"]["status"] == "ready" and listing["multicolumn.pdf"]["pages"] == 3

    body = ask(http, QUESTION)
    top = body["docchat"]["sources"][0]
    assert not body["docchat"]["abstained"]
    assert (top["source"], top["page"]) == ("multicolumn.pdf", 3)

    assert http.delete("/v1/collections/docs/documents/multicolumn.pdf").status_code == 202
    assert wait_for_job(http, "docs")["state"] == "succeeded"
    again = ask(http, QUESTION)
    assert again["docchat"]["abstained"]
    assert all(s["source"] != "multicolumn.pdf" for s in again["docchat"]["sources"])
