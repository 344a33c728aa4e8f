"""The app's flows, driven through Streamlit's AppTest with fake models.

AppTest runs ui/app.py in this process, so the model builders in ui.resources are
monkeypatched to return rag.testing fakes; everything else is real: the file handling,
ingest.pipeline (the ingest script's code path), the on-disk index and rag.answer.chain.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator
from ui import collection as ui_collection
from ui import resources

APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")

SAMPLE = {
    "paris.md": "# Paris\n\nThe Eiffel Tower was completed in 1889 for the World's Fair. "
    "It stands on the Champ de Mars in Paris.\n",
    "bread.txt": "Sourdough bread is leavened by wild yeast and lactic acid bacteria. "
    "It keeps longer than bread made with baker's yeast.\n",
}
MANUAL = (
    b"The espresso machine warranty lasts 24 months from the date of purchase. "
    b"Descaling every month keeps the boiler clean.\n"
)


@dataclass
class Models:
    encoder: FakeEncoder = field(default_factory=FakeEncoder)
    generator: FakeGenerator = field(default_factory=FakeGenerator)
    encoder_builds: int = 0
    generator_builds: int = 0
    stream_calls: list[dict[str, Any]] = field(default_factory=list)


class SpyChain:
    """The real chain, recording what the page passes per request."""

    def __init__(self, chain: Any, calls: list[dict[str, Any]]) -> None:
        self._chain = chain
        self._calls = calls

    def stream(self, question: str, history: Sequence[tuple[str, str]] = (), **kw: Any) -> Iterator[Any]:
        self._calls.append({"question": question, "history": list(history), **kw})
        return self._chain.stream(question, history, **kw)  # type: ignore[no-any-return]


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Models]:
    sample = tmp_path / "sample-corpus"
    sample.mkdir()
    for name, text in SAMPLE.items():
        (sample / name).write_text(text)
    monkeypatch.setenv("RAG_INDEXES_DIR", str(tmp_path / "indexes"))
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RAG_PARSE_WORKERS", "1")  # no process pool inside the test process
    # The default threshold is calibrated on the real encoder's cosines; the hashed
    # bag-of-words fake scores a relevant one-line passage lower, around 0.35-0.45.
    monkeypatch.setenv("RAG_ABSTAIN_THRESHOLD", "0.25")
    monkeypatch.setenv("RAG_READER", "false")  # the reader is a real model; these use fakes
    monkeypatch.setattr(ui_collection, "SAMPLE_CORPUS", sample)
    m = Models()

    def make_encoder(settings: Any) -> FakeEncoder:
        m.encoder_builds += 1
        return m.encoder

    def make_generator(settings: Any) -> FakeGenerator:
        m.generator_builds += 1
        return m.generator

    real_make_chain = resources.make_chain

    def make_chain(settings: Any, index_dir: Path, encoder: Any, generator: Any) -> Any:
        return SpyChain(real_make_chain(settings, index_dir, encoder, generator), m.stream_calls)

    monkeypatch.setattr(resources, "make_encoder", make_encoder)
    monkeypatch.setattr(resources, "make_generator", make_generator)
    monkeypatch.setattr(resources, "make_chain", make_chain)
    st.cache_resource.clear()
    # AppTest reads no config file: say what ui/.streamlit/config.toml says for a real server
    # (the app refuses to serve beyond localhost without a password).
    address = st_config.get_option("server.address")
    st_config.set_option("server.address", "localhost")
    yield m
    st_config.set_option("server.address", address)
    st.cache_resource.clear()


def settle(at: AppTest, timeout: float = 60.0) -> AppTest:
    """Re-run the page until no background job is running (the browser polls the same way)."""
    deadline = time.monotonic() + timeout
    at.run()
    while time.monotonic() < deadline:
        if not at.get("progress"):
            # Subtle: a job can end within one run, after the uploader was drawn disabled
            # (the job was running) and before the progress bar would have been (it was
            # not): one more run draws the whole page idle. (Flaky under load before.)
            at.run()
            if not at.get("progress"):
                break
        time.sleep(0.2)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("progress"), "a job was still running at the timeout"
    return at


def start(timeout: float = 60.0) -> AppTest:
    return settle(AppTest.from_file(APP, default_timeout=timeout))


def documents(at: AppTest) -> dict[str, str]:
    """Document name -> status, from the documents table."""
    table = at.dataframe[0].value
    return dict(zip(table["Document"], table["Status"], strict=True))


def plain(markdown: str) -> str:
    """Markdown as the user reads it: the page escapes all document text and file names."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def texts(elements: Any) -> list[str]:
    return [plain(str(e.value)) for e in elements]


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question)
    return settle(at)


def upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    at.file_uploader[0].set_value(files)
    return settle(at)


def test_first_start_builds_the_sample_collection(models: Models, tmp_path: Path) -> None:
    at = start()
    assert at.sidebar.selectbox(key="collection_select").value == "sample"
    assert documents(at) == {"bread.txt": "ready", "paris.md": "ready"}
    assert any("Documents (2 ·" in e.label for e in at.expander)
    assert any("Building the index of 2 documents" in s for s in texts(at.success))
    # Seeded by copy: the sample corpus is untouched, the collection has its own folder.
    docs = tmp_path / "indexes" / "sample" / "documents"
    assert sorted(p.name for p in docs.iterdir()) == ["bread.txt", "paris.md"]
    assert not at.chat_input[0].disabled


def test_upload_ingest_ask_answer_with_sources(models: Models) -> None:
    at = start()
    upload(at, [("../Espresso manual.txt", MANUAL, "text/plain")])
    assert documents(at)["Espresso manual.txt"] == "ready"
    assert any("Adding 1 document: 1 added" in s for s in texts(at.success))

    ask(at, "How long does the espresso machine warranty last from the date of purchase?")
    user, bot = at.chat_message[0], at.chat_message[1]
    assert user.name == "user" and bot.name == "assistant"
    answer = bot.markdown[0].value
    assert "24 months" in answer and "**\\[1\\]**" in answer  # citation marker, escaped text
    sources = bot.expander[0]
    assert sources.label.startswith("Sources (")
    headings = [str(m.value) for m in sources.markdown]
    assert "Espresso manual\\.txt" in headings[0] and "cited" in headings[0]
    # The answer's own words (not the question's) are highlighted in the cited passage.
    highlighted = set(re.findall(r":orange-background\[([^\]]*)\]", headings[1]))
    assert {"24", "months"} <= highlighted
    assert not highlighted & {"warranty", "espresso", "Descaling", "purchase"}
    assert "Descaling" in headings[1]
    # Decoding and retrieval settings travel with the request.
    call = models.stream_calls[-1]
    assert call["k"] == 4 and call["mode"] == "hybrid"
    assert call["params"].do_sample is False
    assert call["params"].max_new_tokens == Settings().max_new_tokens  # the sidebar default


def test_sidebar_settings_are_passed_per_request_without_rebuilding(models: Models) -> None:
    at = start()
    at.slider(key="opt_k").set_value(1)
    at.radio(key="opt_mode").set_value("bm25")
    at.slider(key="opt_max_new_tokens").set_value(32)
    at.toggle(key="opt_sampling").set_value(True)
    at.run()
    at.slider(key="opt_t").set_value(0.3)
    at.run()
    ask(at, "When was the Eiffel Tower completed?")
    call = models.stream_calls[-1]
    assert call["k"] == 1 and call["mode"] == "bm25"
    p = call["params"]
    assert (p.max_new_tokens, p.do_sample, p.temperature) == (32, True, 0.3)
    assert at.chat_message[1].expander[0].label == "Sources (1)"
    # A follow-up carries the history; the models were built once for all of it.
    ask(at, "What is it made of?")
    assert models.stream_calls[-1]["history"][0][0] == "When was the Eiffel Tower completed?"
    assert (models.encoder_builds, models.generator_builds) == (1, 1)
    assert len(at.chat_message) == 4


def test_models_are_shared_between_sessions(models: Models) -> None:
    start()
    other = start()
    ask(other, "What leavens sourdough bread?")
    assert (models.encoder_builds, models.generator_builds) == (1, 1)


def test_remove_document(models: Models, tmp_path: Path) -> None:
    at = start()
    upload(at, [("manual.txt", MANUAL, "text/plain")])
    assert "manual.txt" in documents(at)
    at.multiselect(key="remove_sel_sample_0").set_value(["manual.txt"]).run()
    at.button(key="remove_btn_sample").click().run()
    # Nothing is removed before the user confirms.
    assert "manual.txt" in documents(at)
    assert any("Remove **manual.txt** from the collection?" in w for w in texts(at.warning))
    at.button(key="remove_yes_sample").click()
    settle(at)
    assert documents(at) == {"bread.txt": "ready", "paris.md": "ready"}
    assert not (tmp_path / "indexes" / "sample" / "documents" / "manual.txt").exists()
    assert any("Removing 1 document: 1 removed" in s for s in texts(at.success))
    ask(at, "How long does the espresso machine warranty last from the date of purchase?")
    shown = " ".join(texts(at.chat_message[1].markdown))
    assert "manual" not in shown


def test_bad_files_are_reported_and_the_others_go_in(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_MAX_FILE_MB", "0.01")  # about 10 kB
    at = start()
    upload(
        at,
        [
            ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "application/pdf"),
            ("huge.txt", b"word " * 5000, "text/plain"),
            ("notes.md", b"# Notes\n\nThe meeting moved to Thursday at noon.\n", "text/markdown"),
        ],
    )
    docs = documents(at)
    assert docs["notes.md"] == "ready"
    assert "huge.txt" not in docs
    assert docs["broken.pdf"].startswith("not added: ")
    errors = texts(at.error)
    assert any("huge.txt" in e and "limit" in e for e in errors)
    assert any("broken.pdf" in e and "not added" in e for e in errors)
    assert not at.exception


def test_same_file_twice_is_a_no_op(models: Models) -> None:
    at = start()
    upload(at, [("manual.txt", MANUAL, "text/plain")])
    calls = models.encoder.calls
    upload(at, [("manual copy.txt", MANUAL, "text/plain")])
    assert any("already in the collection as 'manual.txt'" in i for i in texts(at.info))
    assert "manual copy.txt" not in documents(at)
    assert models.encoder.calls == calls  # nothing re-embedded


def test_abstention_says_so_and_shows_nearest_passages(models: Models) -> None:
    at = start()
    ask(at, "xylophone zeppelin quasar?")
    bot = at.chat_message[1]
    assert bot.warning, "an abstention is shown as a plain warning"
    assert bot.expander[0].label == "Nearest passages"
    assert ":orange-background[" not in " ".join(texts(bot.expander[0].markdown))


def test_new_empty_collection_then_upload(models: Models) -> None:
    at = start()
    at.text_input(key="new_collection_name").set_value("contracts")
    create = next(b for b in at.button if b.label == "Create")
    create.click()
    settle(at)
    assert at.sidebar.selectbox(key="collection_select").value == "contracts"
    assert at.chat_input[0].disabled
    assert any("empty" in i for i in texts(at.info))
    upload(at, [("lease.txt", b"The lease ends on 31 March 2027.", "text/plain")])
    assert documents(at) == {"lease.txt": "ready"}
    ask(at, "When does the lease end?")
    assert "31 March 2027" in at.chat_message[1].markdown[0].value
    # Bad names are refused with the rule.
    at.text_input(key="new_collection_name").set_value("../etc")
    next(b for b in at.button if b.label == "Create").click()
    at.run()
    assert any("not allowed" in e for e in texts(at.error))


def test_a_model_that_fails_to_load_is_named(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Any) -> Any:
        raise OSError("decoder weights not found at /nowhere/model.gguf")

    monkeypatch.setattr(resources, "make_generator", broken)
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    assert not at.exception
    assert texts(at.error) == [
        "Cannot load the language model: decoder weights not found at /nowhere/model.gguf"
    ]


def test_errors_are_short_messages_not_tracebacks(models: Models) -> None:
    class Broken(FakeGenerator):
        def stream(self, messages: Any, params: Any) -> Iterator[str]:
            raise RuntimeError("decoder exploded")

    models.generator = Broken()
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    assert not at.exception
    assert any(e.startswith("Could not answer") and "RuntimeError" in e for e in texts(at.error))
