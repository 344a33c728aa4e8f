"""RAG_DECODER=openai:URL: the chain answers through a real OpenAI-compatible HTTP server.

The server (tests/decoder_server.py, uvicorn in its own process) fronts the same fake
generator the in-process chain uses, so the two answers must agree exactly: prompt,
streaming, citations and the checks on the reply are the chain's, whichever side decodes.
The ``real`` test does the same with the real default decoder (greedy) on both sides.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI
from procs import free_port, port_open, process, python

from rag.answer.build import build_chain
from rag.answer.chain import Done, Token
from rag.models.remote import RemoteDecoderError, base_url, build_remote_chat_model, served_model
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, write_index

pytestmark = pytest.mark.scale

DOCS = {
    "eiffel.txt": "The Eiffel Tower was completed in 1889. It is 330 metres tall.",
    "guide/louvre.pdf": "The Louvre museum in Paris holds the Mona Lisa painting.",
    "notes/rome.md": "The Colosseum in Rome was finished in 80 AD under emperor Titus.",
}
QUESTIONS = ["When was the Eiffel Tower completed?", "Which painting does the Louvre hold?",
             "Who was emperor when the Colosseum was finished?", "What is the capital of Peru?"]


@contextlib.contextmanager
def start_decoder(tmp: Path, generator: str, key: str | None = None, timeout: float = 60
                  ) -> Iterator[str]:
    port = free_port()
    args = python("tests/decoder_server.py", "--port", str(port), "--generator", generator)
    if key:
        args += ["--key", key]
    with process(args, lambda: port_open(port), timeout=timeout, log=tmp / f"decoder-{port}.log"):
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_decoder(tmp_path_factory.mktemp("decoder"), "fake", key="sekrit") as url:
        yield url


def remote_settings(settings: Settings, url: str, **kw: object) -> Settings:
    return settings.with_overrides(**{"decoder": f"openai:{url}", "decoder_api_key": "sekrit",
                                      "abstain_threshold": 0.3, "k": 3, **kw})


def test_remote_answers_equal_local_ones(settings: Settings, tmp_path: Path, fake_server: str) -> None:
    index = write_index(tmp_path / "idx", DOCS, FakeEncoder(), pdf_page=2)
    local = build_chain(settings.with_overrides(abstain_threshold=0.3, k=3), index,
                        encoder=FakeEncoder(), generator=FakeGenerator())
    remote = build_chain(remote_settings(settings, fake_server), index, encoder=FakeEncoder())
    assert isinstance(remote.llm, ChatOpenAI)
    for q in QUESTIONS:
        a, b = local.invoke(q), remote.invoke(q)
        assert (b.text, b.cited, b.abstained) == (a.text, a.cited, a.abstained), q
        assert [s.source for s in b.sources] == [s.source for s in a.sources]
    first = remote.invoke(QUESTIONS[0])
    assert first.text == "The Eiffel Tower was completed in 1889. [1]"
    assert first.sources[0].source == "eiffel.txt"


def test_remote_reply_streams_token_by_token(settings: Settings, tmp_path: Path, fake_server: str
                                             ) -> None:
    index = write_index(tmp_path / "idx", DOCS, FakeEncoder())
    chain = build_chain(remote_settings(settings, fake_server), index, encoder=FakeEncoder())
    events = list(chain.stream("When was the Eiffel Tower completed?"))
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert len(tokens) > 3  # the fake streams word by word, the client must too
    done = events[-1]
    assert isinstance(done, Done)
    assert done.answer.text.startswith("".join(tokens).strip()[:20])


def test_remote_model_name_comes_from_the_server(settings: Settings, fake_server: str) -> None:
    s = remote_settings(settings, fake_server)
    assert base_url(s) == fake_server
    assert served_model(s) == "test-decoder"
    assert served_model(s.with_overrides(decoder_remote_model="other")) == "other"


def test_wrong_key_or_dead_server_is_one_clear_error(settings: Settings, fake_server: str) -> None:
    with pytest.raises(RemoteDecoderError, match="cannot list its models"):
        build_remote_chat_model(remote_settings(settings, fake_server, decoder_api_key="wrong"))
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RemoteDecoderError, match="RAG_DECODER_REMOTE_MODEL"):
        build_remote_chat_model(remote_settings(settings, dead))


def test_bad_decoder_setting_names_the_allowed_forms() -> None:
    with pytest.raises(ValueError, match="'local' or 'openai:"):
        Settings(decoder="vllm://x")


@pytest.mark.real
def test_real_decoder_over_http_answers_as_in_process(tmp_path: Path, real_encoder: object) -> None:
    """The real SmolLM2 decoder behind HTTP vs in this process, greedy: the same answers."""
    from rag.models.generate import build_generator

    s = Settings(indexes_dir=tmp_path / "indexes", model_cache_dir=tmp_path / "cache", reader=False,
                 abstain_threshold=0.2, k=3)
    index = write_index(tmp_path / "idx", DOCS, real_encoder)  # type: ignore[arg-type]
    local = build_chain(s, index, encoder=real_encoder, generator=build_generator(s))  # type: ignore[arg-type]
    with start_decoder(tmp_path, "local", timeout=240) as url:
        remote = build_chain(s.with_overrides(decoder=f"openai:{url}"), index,
                             encoder=real_encoder)  # type: ignore[arg-type]
        for q in QUESTIONS[:3]:
            a, b = local.invoke(q), remote.invoke(q)
            assert (b.text, b.cited, b.abstained) == (a.text, a.cited, a.abstained), q


def test_api_with_a_remote_decoder_loads_no_local_one(
        settings: Settings, tmp_path: Path, fake_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.models.generate
    from api.service import Service

    def no_local(_settings: object) -> None:
        raise AssertionError("the local decoder was loaded although RAG_DECODER is remote")

    monkeypatch.setattr(rag.models.generate, "build_generator", no_local)
    s = remote_settings(settings, fake_server, indexes_dir=tmp_path / "indexes")
    service = Service.build(s, encoder=FakeEncoder())
    assert service.generator is None
    write_index(s.index_path("docs"), DOCS, FakeEncoder(), pdf_page=2)
    chain = service.chain("docs")
    assert isinstance(chain.llm, ChatOpenAI)
    assert chain.invoke(QUESTIONS[0]).text == "The Eiffel Tower was completed in 1889. [1]"
