"""Issue 14 through AppTest (fake models, real files, index, chain and chat store):
chats that last, stop and queue, citations that open the page, readable sources."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import test_ui_app
from streamlit.testing.v1 import AppTest
from test_ui_app import APP, Models, ask, settle, start, texts, upload

from rag.types import Source
from ui import resources
from ui.chat_store import ChatStore, ChatStoreError, Turn

models = test_ui_app.models  # the fake-model fixture of the app tests, shared
PDF = Path(__file__).resolve().parent / "data" / "pdfs" / "multicolumn.pdf"


def reload(at: AppTest) -> AppTest:
    """A new browser session on the same URL: what a reload (F5) does."""
    again = AppTest.from_file(APP, default_timeout=60)
    for k, v in at.query_params.items():
        again.query_params[k] = v
    return settle(again)


def chats_dir(tmp_path: Path) -> ChatStore:
    return ChatStore(tmp_path / "indexes" / "sample")


def test_a_reload_returns_to_the_chat_with_its_settings(models: Models, tmp_path: Path) -> None:
    at = start()
    at.slider(key="opt_k").set_value(2)
    at.radio(key="opt_mode").set_value("bm25").run()
    ask(at, "When was the Eiffel Tower completed?")
    ask(at, "What leavens sourdough bread?")
    assert at.query_params["collection"] == "sample" and at.query_params["chat"]

    again = reload(at)
    assert [m.name for m in again.chat_message] == ["user", "assistant"] * 2
    assert texts(again.chat_message[0].markdown) == ["When was the Eiffel Tower completed?"]
    assert again.slider(key="opt_k").value == 2 and again.radio(key="opt_mode").value == "bm25"
    # No stale job banner: this session did not watch the index being built.
    assert not any("Building the index" in s for s in texts(again.success))
    # The chat is named after its first question, in the sidebar list.
    assert any(b.label == "When was the Eiffel Tower completed?" for b in again.sidebar.button)
    # A follow-up in the reloaded session carries the saved history.
    ask(again, "How tall is it?")
    assert models.stream_calls[-1]["history"][0][0] == "When was the Eiffel Tower completed?"
    assert len(chats_dir(tmp_path).turns(at.query_params["chat"])) == 3


def test_new_chat_rename_and_delete(models: Models, tmp_path: Path) -> None:
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    first = at.query_params["chat"]
    at.button(key="new_chat").click().run()
    assert not at.chat_message and "chat" not in at.query_params
    ask(at, "What leavens sourdough bread?")
    second = at.query_params["chat"]
    assert second != first
    store = chats_dir(tmp_path)
    titles = [c.title for c in store.chats()]
    assert titles == ["What leavens sourdough bread?", "When was the Eiffel Tower completed?"]

    at.button(key=f"chat_{first}").click().run()  # open the first again
    assert texts(at.chat_message[0].markdown) == ["When was the Eiffel Tower completed?"]
    at.text_input(key=f"rename_{first}").set_value("Paris facts")
    at.button(key="rename_chat").click().run()
    assert any(b.label == "Paris facts" for b in at.sidebar.button)

    at.button(key="delete_chat").click().run()
    assert store.exists(first), "deleting asks first"
    at.button(key="delete_chat_yes").click().run()
    assert not store.exists(first) and [c.id for c in store.chats()] == [second]
    assert not at.chat_message


def test_stop_keeps_what_was_written(models: Models, tmp_path: Path) -> None:
    """What Streamlit leaves when Stop interrupts the run mid-answer: the partial answer in
    session state and the stop flag (set by the button's callback before the new run)."""
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    chat = at.query_params["chat"]
    at.session_state["writing"] = {
        "chat": f"sample/{chat}", "question": "What is it made of?", "text": "It is made of",
        "sources": [], "started": time.time() - 2, "mode": "hybrid",
    }  # fmt: skip
    at.session_state["stop_requested"] = True
    settle(at)
    bot = at.chat_message[3]
    assert texts(bot.markdown)[0] == "It is made of"
    assert any("Stopped before the answer was finished" in c for c in texts(bot.caption))
    saved = chats_dir(tmp_path).turns(chat)
    assert saved[-1].stopped and saved[-1].answer == "It is made of"
    # A stopped answer is not history the chain rewrites follow-ups with.
    ask(at, "And the bread?")
    assert [q for q, _ in models.stream_calls[-1]["history"]] == ["When was the Eiffel Tower completed?"]


def test_a_question_sent_while_writing_is_queued_not_lost(models: Models, tmp_path: Path) -> None:
    """A new question interrupts the run writing an answer: that answer is asked again
    first, then the new question, both kept."""
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    chat = at.query_params["chat"]
    at.session_state["writing"] = {
        "chat": f"sample/{chat}", "question": "What leavens sourdough bread?", "text": "Sourdough",
        "sources": [], "started": time.time(), "mode": "hybrid",
    }  # fmt: skip
    at.chat_input[0].set_value("Where does the Eiffel Tower stand?")
    settle(at)
    questions = [c["question"] for c in models.stream_calls]
    assert questions[-2:] == ["What leavens sourdough bread?", "Where does the Eiffel Tower stand?"]
    saved = [t.question for t in chats_dir(tmp_path).turns(chat)]
    assert saved == [
        "When was the Eiffel Tower completed?",
        "What leavens sourdough bread?",
        "Where does the Eiffel Tower stand?",
    ]
    assert len(at.chat_message) == 6


def test_queued_questions_are_shown_until_answered(models: Models) -> None:
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    key = f"sample/{at.query_params['chat']}"
    calls = len(models.stream_calls)

    at.session_state["queue"] = [{"chat": key, "question": "Q one?"}, {"chat": key, "question": "Q two?"}]
    settle(at)
    assert [c["question"] for c in models.stream_calls[calls:]] == ["Q one?", "Q two?"]
    assert not at.session_state["queue"]


def test_regenerate_replaces_the_last_answer(models: Models, tmp_path: Path) -> None:
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    chat = at.query_params["chat"]
    at.button(key="regen_t0").click()
    settle(at)
    assert [c["question"] for c in models.stream_calls] == ["When was the Eiffel Tower completed?"] * 2
    assert len(chats_dir(tmp_path).turns(chat)) == 1 and len(at.chat_message) == 2
    # Copy: the answer's exact text in a code block (which has the browser's copy button).
    assert at.chat_message[1].code[0].value == chats_dir(tmp_path).turns(chat)[0].answer


def test_citation_links_to_its_source_and_opens_the_pdf_page(models: Models) -> None:
    at = start()
    upload(at, [("multicolumn.pdf", PDF.read_bytes(), "application/pdf")])
    at.slider(key="opt_k").set_value(1)
    at.radio(key="opt_mode").set_value("bm25").run()
    ask(at, "Denmark 5.8 42,951 Copenhagen Danish capital?")
    bot = at.chat_message[1]
    answer = bot.markdown[0].value
    assert "](#src-t0-1)" in answer, answer  # [1] jumps to source 1 of this answer
    assert '<span id="src-t0-1">' in bot.get("html")[0].proto.body
    heading = bot.expander[0].markdown[0]
    assert "multicolumn\\.pdf" in heading.value and "page 3" in heading.value
    assert "relevance ●" in heading.value and "Raw score" in heading.help  # raw score on demand
    passage = bot.expander[0].markdown[1].value
    # The table's rows stay rows, shown as a table with their headings.
    assert any(line.startswith("| Denmark | ") and "Copenhagen" in line for line in passage.splitlines())

    # The cited source, right under the answer, opens its page.
    cite = at.button(key="cite_t0_1")
    assert cite.label == "\\[1\\] multicolumn\\.pdf · page 3"
    cite.click().run()
    dialog = at.get("dialog")[0]
    inside = _walk(dialog)
    # The page image, drawn at a readable width (scrolled on a phone, issue 28).
    pages = [e.proto.body for e in inside if e.type == "html"]
    assert any('src="data:image/png;base64,' in b and "min-width:" in b for b in pages), pages
    assert any("multicolumn\\.pdf" in e.value and "page 3" in e.value for e in inside if e.type == "markdown")


def test_page_image_marks_the_passage_and_the_supporting_word() -> None:
    from ui.preview import WORD_FILL, pdf_page_image

    passage = "Denmark 5.8 42,951 Copenhagen Danish\nFinland 5.5 338,424 Helsinki"
    plain = pdf_page_image(PDF, 3, "no such text on this page", set())
    marked = pdf_page_image(PDF, 3, passage, {"copenhagen"})
    assert marked.found and not plain.found
    assert marked.image.size == plain.image.size
    diff = [
        (x, y)
        for y in range(0, plain.image.height, 2)
        for x in range(0, plain.image.width, 2)
        if plain.image.getpixel((x, y)) != marked.image.getpixel((x, y))
    ]
    assert diff, "something is marked"
    # The marks sit in one band of the page (two table rows), not all over it.
    ys = [y for _, y in diff]
    assert max(ys) - min(ys) < plain.image.height * 0.05
    # The supporting word is marked more strongly than the rest of the passage.
    reds = sorted({marked.image.getpixel(p) for p in diff if marked.image.getpixel(p)[0] > 200})
    assert WORD_FILL[3] > 0 and len(reds) > 1


def test_text_source_opens_in_context_and_documents_preview(models: Models) -> None:
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    bot = at.chat_message[1]
    next(b for b in bot.button if b.label == "Show in the document").click().run()
    dialog = at.get("dialog")[0]
    shown = " ".join(str(getattr(e, "value", "")) for e in _walk(dialog))
    assert "Eiffel Tower" in shown and "---" in shown
    at.selectbox(key="preview_sample").set_value("bread.txt").run()
    assert any("Sourdough bread" in t for t in texts(at.main.markdown))


def _walk(block: Any) -> list[Any]:
    out = []
    for child in getattr(block, "children", {}).values():
        out.append(child)
        out.extend(_walk(child))
    return out


def test_models_in_use_are_shown(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    # The decoder loads in the background from the start; held back here until just after
    # the first question is asked, so that question waits for it.
    loaded = threading.Event()
    fake = resources.make_generator
    monkeypatch.setattr(resources, "make_generator", lambda settings: loaded.wait(30) and fake(settings))
    at = start()
    threading.Timer(1.0, loaded.set).start()
    ask(at, "When was the Eiffel Tower completed?")
    captions = " ".join(texts(at.sidebar.caption))
    assert "Search (encoder): " + models.encoder.name in captions
    assert "Answers (decoder): " + models.generator.name in captions and " on " in captions
    # Waiting for the decoder is reported on its own, not inside the answer's time.
    caption = texts(at.chat_message[1].caption)[-1]
    assert re.search(r"before it, the language model was loaded \(\d+\.\d s, once per start\)", caption)
    ask(at, "What leavens sourdough bread?")
    assert "language model was loaded" not in texts(at.chat_message[3].caption)[-1]


def test_chat_store_is_safe_for_concurrent_sessions(tmp_path: Path) -> None:
    store = ChatStore(tmp_path)
    chat = store.create()
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for j in range(20):
                ChatStore(tmp_path).add_turn(chat, Turn(f"q{i}-{j}", "a", False))
        except BaseException as e:  # collected: a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.turns(chat)) == 80


def test_chat_store_round_trip_and_format_check(tmp_path: Path) -> None:
    store = ChatStore(tmp_path)
    chat = store.create()
    turn = Turn("q", "a [1]", False, [Source(1, "x.pdf", 3, 0.5, "text", "id", 4, 8)], [1], 1.5, "dense")
    store.add_turn(chat, turn)
    assert store.turns(chat) == [turn]
    import sqlite3

    with sqlite3.connect(tmp_path / "chats.sqlite") as db:
        db.execute("UPDATE turns SET format = 99")
    with pytest.raises(ChatStoreError, match="format 99"):
        store.turns(chat)


def test_times_are_shown_in_the_browsers_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    from ui.chats import local_time

    noon_utc = 1_780_000_000 - 1_780_000_000 % 86400 + 12 * 3600
    monkeypatch.setattr(type(st.context), "timezone", property(lambda self: "Asia/Tokyo"))
    assert local_time(noon_utc).endswith("21:00")  # UTC+9, no daylight saving
    monkeypatch.setattr(type(st.context), "timezone", property(lambda self: None))
    assert local_time(noon_utc).endswith("12:00 UTC")  # the browser did not say: labelled UTC


def test_theme_follows_the_system_and_server_stays_local() -> None:
    import tomllib

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    theme = config.get("theme", {})
    # A base, or colours at the top of [theme], make one fixed theme: dark mode is ignored.
    assert set(theme) <= {"light", "dark"}, theme
    assert config["server"]["address"] == "localhost"


def test_the_user_picks_the_decoder_among_those_configured(
    models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_DECODER_CHOICES", '["/models/other-decoder"]')
    built: list[str] = []
    make = test_ui_app.resources.make_generator

    def recording(settings: Any) -> Any:
        built.append(settings.decoder_model)
        return make(settings)

    monkeypatch.setattr(test_ui_app.resources, "make_generator", recording)
    at = start()
    picker = at.selectbox(key="opt_decoder")
    assert picker.options == ["Default (SmolLM2-135M-Instruct)", "/models/other-decoder"]
    ask(at, "When was the Eiffel Tower completed?")
    picker.set_value("/models/other-decoder").run()
    ask(at, "What leavens sourdough bread?")
    assert built == ["default", "/models/other-decoder"]
    assert "Answers (decoder): " in " ".join(texts(at.sidebar.caption))
    # The choice is saved with the chat.
    again = reload(at)
    assert again.selectbox(key="opt_decoder").value == "/models/other-decoder"
    assert models.encoder_builds == 1  # one encoder for every decoder


def test_an_answer_cut_by_the_length_limit_says_so(models: Models) -> None:
    from rag.testing import FakeGenerator

    models.generator = FakeGenerator(
        script="The warranty lasts 24 months from the date of purchase [1]. Descaling every month "
        "keeps the boiler clean, which the manual explains at some length [1]."
    )
    at = start()
    upload(at, [("manual.txt", test_ui_app.MANUAL, "text/plain")])
    at.slider(key="opt_max_new_tokens").set_value(16).run()
    ask(at, "How long does the espresso machine warranty last from the date of purchase?")
    assert any("reached its length limit" in c for c in texts(at.chat_message[1].caption))
    at.slider(key="opt_max_new_tokens").set_value(64).run()
    at.button(key="regen_t0").click()
    settle(at)
    assert not any("reached its length limit" in c for c in texts(at.chat_message[1].caption))


def test_a_failed_answer_keeps_its_question(models: Models) -> None:
    from rag.testing import FakeGenerator

    class BrokenOnce(FakeGenerator):
        failed = False

        def stream(self, messages: Any, params: Any) -> Any:
            if not self.failed:
                self.failed = True
                raise RuntimeError("decoder exploded")
            return super().stream(messages, params)

    models.generator = BrokenOnce()
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    again = reload(at)
    assert texts(again.chat_message[0].markdown) == ["When was the Eiffel Tower completed?"]
    assert any(e.startswith("Could not answer") for e in texts(again.chat_message[1].error))
    # A failed answer is no history for the next question.
    ask(again, "What leavens sourdough bread?")
    assert models.stream_calls[-1]["history"] == []
