"""Issue 28 (what a new user met in a real browser), the parts AppTest and plain calls can
check: the Host decision against DNS rebinding, the server's request checks, the models
loading from the start, documents counted while indexed, answers from the reader shown as
answers, the last chat reopened, and the evidence itself marked on the PDF page.
The browser half is tests/test_ui_first_minute.py.
"""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path

import pytest
import test_ui_app
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest
from test_ui_app import APP, Models, settle, start, texts

from rag.settings import Settings
from rag.types import Source
from ui import resources
from ui.access import host_problem
from ui.chat_store import ChatStore, Turn
from ui.library_view import documents_label
from ui.preview import EVIDENCE_FILL, evidence_text, pdf_page_image
from ui.source_view import evidence_of

models = test_ui_app.models  # the fake-model fixture of the app tests, shared
REPO = Path(__file__).resolve().parent.parent
MULTICOLUMN = REPO / "corpora" / "sample" / "multicolumn.pdf"  # page 3: the EU countries table
GOOGLE_DOC = REPO / "corpora" / "sample" / "google-doc-document.pdf"  # a table of countries, page 1


@pytest.mark.parametrize(
    ("host", "address", "allowed"),
    [
        ("localhost:8501", "localhost", True),
        ("127.0.0.1:8501", "localhost", True),
        ("[::1]:8501", "localhost", True),
        ("LOCALHOST:8501", "localhost", True),
        ("app.localhost:8501", "localhost", True),
        ("127.0.0.2:9000", "127.0.0.2", True),
        (None, "localhost", True),  # no Host: not a browser, so no rebinding page
        ("attacker.example:8501", "localhost", False),
        ("attacker.example", "127.0.0.1", False),
        ("localhost.attacker.example:8501", "localhost", False),
        ("192.168.1.20:8501", "localhost", False),
        ("[::1", "localhost", False),  # malformed
    ],
)
def test_only_this_machines_names_get_the_app(host: str | None, address: str, allowed: bool) -> None:
    problem = host_problem(host, address, 8501, Settings())
    assert (problem is None) is allowed, problem
    if not allowed:
        assert "http://localhost:8501" in problem and "RAG_UI_PASSWORD" in problem


def test_with_a_password_any_name_gets_the_sign_in() -> None:
    settings = Settings(ui_password=SecretStr("s3cret"))
    assert host_problem("attacker.example:8501", "0.0.0.0", 8501, settings) is None


def test_the_refusal_shows_the_host_as_text() -> None:
    problem = host_problem("![x](http://evil.test/x.png):8501", "localhost", 8501, Settings())
    assert problem is not None and "![x](" not in problem and "\\!\\[x\\]\\(" in problem


def test_the_server_refuses_cross_site_requests() -> None:
    server = tomllib.loads((REPO / "ui" / ".streamlit" / "config.toml").read_text())["server"]
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True
    assert server["address"] == "localhost"


def test_documents_being_indexed_are_counted_as_such() -> None:
    assert documents_label(0, 0, 7, busy=True) == "Documents (7 · indexing…)"
    assert documents_label(2, 40, 3, busy=True) == "Documents (5 · 3 indexing…)"
    assert documents_label(7, 120, 0, busy=True) == "Documents (7 · updating…)"
    assert documents_label(7, 120, 0, busy=False) == "Documents (7 · 120 passages)"


def test_models_load_from_the_start_and_the_page_says_so(models: Models,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = threading.Event()
    fake = resources.make_generator
    monkeypatch.setattr(resources, "make_generator", lambda settings: loaded.wait(30) and fake(settings))
    at = start()
    assert any(c.endswith("Loading the models… (encoder ready, decoder loading)") for c in texts(at.caption))
    assert "Answers (decoder): the default model, loading…" in texts(at.sidebar.caption)
    loaded.set()
    deadline = time.monotonic() + 10
    while resources.warmup().status() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    settle(at)
    # Loaded without a question being asked, and the page no longer says it is loading.
    assert models.generator_builds == 1
    assert not any("Loading the models" in c for c in texts(at.caption))
    loaded_caption = f"Answers (decoder): {models.generator.name} on "
    assert any(c.startswith(loaded_caption) for c in texts(at.sidebar.caption))


def _saved_turn(tmp_path: Path, **fields: object) -> str:
    """A chat in the sample collection holding one answer from the PDF's table."""
    source = Source(1, "multicolumn.pdf", 3, 0.03, "Austria | Capital: Vienna", "c1", 0, 25)
    turn = Turn("What is the capital of Austria?", "Vienna [1]", False, [source], [1], 1.2, "hybrid",
                ['multicolumn.pdf, page 3: "Austria | Capital: Vienna"'], "extracted", **fields)  # type: ignore[arg-type]  # fmt: skip
    store = ChatStore(tmp_path / "indexes" / "sample")
    chat = store.create()
    store.add_turn(chat, turn)
    return chat


def test_the_readers_answer_is_shown_as_the_answer_with_its_source(models: Models, tmp_path: Path) -> None:
    start()
    _saved_turn(tmp_path)
    at = start()  # a new session: opens the collection's last chat
    bot = at.chat_message[1]
    captions = texts(bot.caption)
    assert 'multicolumn.pdf, page 3: "Austria | Capital: Vienna"' in captions
    assert not any("could not be backed up" in c or "disagreed" in c for c in captions), captions


def test_a_real_disagreement_keeps_a_note(models: Models, tmp_path: Path) -> None:
    start()
    _saved_turn(tmp_path, overruled="Salzburg")
    at = start()
    notes = [c for c in texts(at.chat_message[1].caption) if "disagreed" in c]
    assert notes and "“Salzburg”" in notes[0], notes


def test_a_collection_opens_its_last_chat(models: Models, tmp_path: Path) -> None:
    at = start()
    store = ChatStore(tmp_path / "indexes" / "sample")
    older = store.create("older")
    store.add_turn(older, Turn("first question?", "first answer.", False))
    time.sleep(0.01)
    newer = _saved_turn(tmp_path)
    # Switching to another collection and back, in one session (its chat was never opened).
    at.text_input(key="new_collection_name").set_value("other")
    next(b for b in at.button if b.label == "Create").click()
    settle(at)
    assert at.selectbox(key="collection_select").value == "other" and not at.chat_message
    at.selectbox(key="collection_select").set_value("sample")
    settle(at)
    assert at.query_params["chat"] in (newer, [newer])
    assert at.chat_message[0].markdown[0].value.startswith("What is the capital of Austria")
    # "New chat" still opens an empty one, and it stays open.
    at.button(key="new_chat").click()
    settle(at)
    assert not at.chat_message


def test_the_evidence_row_is_marked_not_the_start_of_the_chunk() -> None:
    chunk = "Table 1: EU Countries Information\nCountry | Population (millions) | Area (km2) | Capital"
    quote = ('multicolumn.pdf, page 3: "Austria | Population (millions): 8.9 | Area (km2): 83,879 | '
             'Capital: Vienna | Official Language: German"')  # fmt: skip
    plain = pdf_page_image(MULTICOLUMN, 3, chunk, set())
    marked = pdf_page_image(MULTICOLUMN, 3, chunk, set(), evidence=[evidence_text(quote)])
    # The row as the page has it:
    row = pdf_page_image(MULTICOLUMN, 3, "Austria 8.9 83,879 Vienna German", set())
    assert marked.evidence_found and not plain.evidence_found
    band = _changed_rows(plain, marked)
    expected = _changed_rows(pdf_page_image(MULTICOLUMN, 3, "no such text", set()), row)
    assert band and expected, (band, expected)
    assert min(expected) - 2 <= min(band) and max(band) <= max(expected) + 2, (band, expected)
    assert max(band) - min(band) < plain.image.height * 0.03  # one row, not the table
    assert EVIDENCE_FILL[3] > 0


def test_a_figure_in_a_transposed_table_is_found_on_its_page() -> None:
    # Germany's population: the row "Population | Indonesia: ... | Germany: 83,190,556 | ...".
    row = ("Population | Indonesia: 273.879.750 | Germany: 83,190,556 | Austria: 8,935,112 | "
           "France: 67,413,000 | Vatican: 453")  # fmt: skip
    shown = pdf_page_image(GOOGLE_DOC, 1, "", {"83,190,556"}, evidence=[row])
    assert shown.evidence_found


def test_evidence_is_matched_to_its_source() -> None:
    a = Source(1, "multicolumn.pdf", 3, 0.1, "x")
    b = Source(2, "multicolumn.pdf", 2, 0.1, "y")
    turn = Turn("q", "a [1]", False, [a, b], [1], evidence=['multicolumn.pdf, page 3: "the row"'])
    assert evidence_of(turn, a) == ("the row",)
    assert evidence_of(turn, b) == ()  # another page, and not cited


def _changed_rows(before: object, after: object) -> list[int]:
    from ui.preview import PageImage

    assert isinstance(before, PageImage) and isinstance(after, PageImage)
    w, h = before.image.size
    return sorted({y for y in range(0, h, 2) for x in range(0, w, 3)
                   if before.image.getpixel((x, y)) != after.image.getpixel((x, y))})  # fmt: skip


def test_the_page_loads_in_one_session_without_a_question(models: Models) -> None:
    """The background loading is started once per process, whatever the sessions."""
    start()
    AppTest.from_file(APP, default_timeout=60).run()
    deadline = time.monotonic() + 10
    while resources.warmup().status() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (models.encoder_builds, models.generator_builds) == (1, 1)
