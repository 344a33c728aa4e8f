"""`rag serve` end to end with the real default models: the command a user runs, in a
subprocess on a free 127.0.0.1 port, driven by the OpenAI client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from api.testing import wait_for_job

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parent.parent
DOCS = {
    "institute.txt": b"The Zorblatt Institute was founded in 1923 in the town of Kellerby by the chemist "
    b"Anna Moravec. It studies the chemistry of rare soils.",
    "manual.md": b"To reset the Hexley 400 coffee machine, hold the steam button for ten seconds until "
    b"the light blinks twice.",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "RAG_INDEXES_DIR": str(tmp_path_factory.mktemp("api-real")),
           "RAG_PARSE_WORKERS": "1", "PYTHONPATH": str(REPO)}
    env.pop("RAG_API_TOKEN", None)
    proc = subprocess.Popen([sys.executable, "-m", "rag_cli.main", "serve", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # loading both models
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout and proc.poll() is not None else ""
                pytest.fail(f"rag serve did not start: {out[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def test_upload_then_ask_with_the_openai_client(server: str) -> None:
    with httpx.Client(base_url=server, timeout=120) as http:
        assert http.post("/v1/collections", json={"name": "lab"}).status_code == 201
        files = [("files", (name, data, "text/plain")) for name, data in DOCS.items()]
        assert http.post("/v1/collections/lab/documents", files=files).status_code == 202
        assert wait_for_job(http, "lab", timeout=120)["state"] == "succeeded"

    client = OpenAI(base_url=server + "/v1", api_key="local", max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="lab", messages=[{"role": "user", "content": "Who founded the Zorblatt Institute?"}])
    text = reply.choices[0].message.content or ""
    grounding = (reply.model_extra or {})["docchat"]
    assert not grounding["abstained"] and "Moravec" in text, text
    cited = {s["source"] for s in grounding["sources"] if s["n"] in grounding["cited"]}
    assert cited == {"institute.txt"}, grounding

    stream = client.chat.completions.create(
        model="lab", stream=True,
        messages=[{"role": "user", "content": "What is the boiling point of liquid nitrogen?"}])
    chunks = list(stream)
    last = chunks[-1].model_extra or {}
    assert last["docchat"]["abstained"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == last["docchat"]["answer"]


# A pasted paragraph and then the ask: ~3,000 characters, far beyond the reader's window.
LONG_QUESTION = ("Some background on what I am looking into before my question. " * 48
                 + "So, who founded the Zorblatt Institute?")


def test_the_real_reader_reads_a_long_question() -> None:
    from rag.models.span_reader import shared_reader

    assert len(LONG_QUESTION) > 3000
    passage = DOCS["institute.txt"].decode()
    spans = shared_reader("cpu").read(LONG_QUESTION, [passage, passage * 6])
    # The question keeps its end, so the reader still finds the founder.
    assert spans and "Moravec" in passage[spans[0].start:spans[0].end], spans[:3]


def test_a_long_question_is_answered_not_a_500(server: str) -> None:
    with httpx.Client(base_url=server, timeout=300) as http:
        if http.get("/v1/collections/lab").status_code == 404:
            assert http.post("/v1/collections", json={"name": "lab"}).status_code == 201
            files = [("files", (name, data, "text/plain")) for name, data in DOCS.items()]
            assert http.post("/v1/collections/lab/documents", files=files).status_code == 202
            assert wait_for_job(http, "lab", timeout=120)["state"] == "succeeded"
        r = http.post("/v1/chat/completions",
                      json={"model": "lab", "messages": [{"role": "user", "content": LONG_QUESTION}]})
        assert r.status_code == 200, r.text[:500]
