"""Visible streaming: the decoder's words shown as Drafts while they are written, the
checked answer (Tokens, Done) after; the HTTP API never sends a Draft, the app replaces
them with the checked answer.

Fake models (rag.testing) throughout; the app through Streamlit's AppTest with the
fixture of test_ui_app.py, the API as a real server on a free port (test_api_guard.py's).
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

import pytest
import test_ui_app
from openai import OpenAI
from test_api_guard import QUESTION, make_settings
from test_ui_app import Models, ask, start, texts

from api.app import create_app
from api.testing import serve_in_thread
from rag.answer.build import build_chain
from rag.answer.chain import UNGROUNDED_TEXT, ChainEvent, Done, Draft, RagChain, Retrieved, Token
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, FakeReader, write_index
from ui import chat_view

models = test_ui_app.models  # the fake-model fixture of the app tests, shared

DOCS = {"eiffel.txt": "The Eiffel Tower was completed in 1889. It is 330 metres tall."}
WHEN = "When was the Eiffel Tower completed?"
# "1999" stands in no passage: a reply the checks must not let through.
UNBACKED = "The Eiffel Tower was completed in 1999 [1]"


def chain_with(settings: Settings, tmp_path: Path, gen: FakeGenerator, reader: FakeReader | None) -> RagChain:
    index_dir = write_index(tmp_path / "idx", DOCS, FakeEncoder())
    s = settings.model_copy(update={"abstain_threshold": 0.2, "k": 3, "reader": reader is not None,
                                    "reader_min_margin": 0.5})
    return build_chain(s, index_dir, encoder=FakeEncoder(), generator=gen, reader=reader)  # type: ignore[arg-type]


def test_drafts_are_the_decoders_words_before_the_checked_answer(settings: Settings, tmp_path: Path) -> None:
    gen = FakeGenerator(script="It was completed in 1889 [1]")
    events = list(chain_with(settings, tmp_path, gen, FakeReader({WHEN: "1889"})).stream(WHEN))
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Done)
    drafts = [i for i, e in enumerate(events) if isinstance(e, Draft)]
    tokens = [i for i, e in enumerate(events) if isinstance(e, Token)]
    # The fake writes word by word: one Draft per piece, all before the first checked Token.
    assert len(drafts) == len(gen.script.split()) and max(drafts) < min(tokens)  # type: ignore[union-attr]
    assert "".join(e.text for e in events if isinstance(e, Draft)) == gen.script
    a = events[-1].answer
    assert a.method == "generated" and "".join(e.text for e in events if isinstance(e, Token)) == a.text
    assert 0 < a.timings["first_draft_s"] <= a.timings["first_token_s"] <= a.timings["total_s"]


def test_an_unbacked_reply_is_drafted_but_the_checked_answer_replaces_it(
        settings: Settings, tmp_path: Path) -> None:
    chain = chain_with(settings, tmp_path, FakeGenerator(script=UNBACKED), FakeReader({WHEN: "1889"}))
    events = list(chain.stream(WHEN))
    assert "1999" in "".join(e.text for e in events if isinstance(e, Draft))
    checked = "".join(e.text for e in events if isinstance(e, Token))
    assert "1999" not in checked and checked == events[-1].answer.text == "1889 [1]"  # type: ignore[union-attr]


def test_drafts_stop_where_the_reply_does(settings: Settings, tmp_path: Path) -> None:
    # The prompt asks for one line: what follows a line break is rambling, not drafted.
    gen = FakeGenerator(script="1889 [1]\nAlso it rained a lot that year")
    events = list(chain_with(settings, tmp_path, gen, FakeReader({WHEN: "1889"})).stream(WHEN))
    drafted = "".join(e.text for e in events if isinstance(e, Draft))
    assert drafted.strip() == "1889 [1]" and "rained" not in drafted


def test_async_path_drafts_too(settings: Settings, tmp_path: Path) -> None:
    chain = chain_with(settings, tmp_path, FakeGenerator(script="It was completed in 1889 [1]"),
                       FakeReader({WHEN: "1889"}))

    async def collect() -> list[ChainEvent]:
        return [e async for e in chain.astream(WHEN)]

    events = asyncio.run(collect())
    assert "".join(e.text for e in events if isinstance(e, Draft)) == "It was completed in 1889 [1]"
    assert isinstance(events[-1], Done) and "first_draft_s" in events[-1].answer.timings


def test_no_draft_when_no_decoder_runs(settings: Settings, tmp_path: Path) -> None:
    # A refusal is decided before the decoder: nothing provisional to show.
    events = list(chain_with(settings, tmp_path, FakeGenerator(), FakeReader({WHEN: "1492"})).stream(WHEN))
    assert not any(isinstance(e, Draft) for e in events)
    assert "first_draft_s" not in events[-1].answer.timings  # type: ignore[union-attr]


def test_the_api_stream_never_carries_a_draft(tmp_path: Path) -> None:
    # The decoder writes a number no passage holds; the chain drafts it, the API must not
    # send it: the client reads only the checked answer.
    gen = FakeGenerator(script=UNBACKED)
    with serve_in_thread(create_app(make_settings(tmp_path), encoder=FakeEncoder(), generator=gen)) as srv:
        client = OpenAI(base_url=srv.api, api_key="x", max_retries=0)
        messages: Any = [{"role": "user", "content": QUESTION}]
        chunks = list(client.chat.completions.create(model="docs", messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = (chunks[-1].model_extra or {})["docchat"]
    assert gen.prompts, "the decoder ran"
    assert text == final["answer"] == UNGROUNDED_TEXT and "1999" not in text


# --- the app -------------------------------------------------------------------------------------


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The draft texts the page drew, in order."""
    seen: list[str] = []
    real = chat_view.render_draft

    def spy(placeholder: Any, text: str) -> None:
        seen.append(text)
        real(placeholder, text)

    monkeypatch.setattr(chat_view, "render_draft", spy)
    return seen


def page_text(at: Any) -> str:
    bot = at.chat_message[1]
    return " ".join(texts(bot.markdown) + texts(bot.caption) + texts(bot.warning))


def test_the_app_shows_drafts_then_the_checked_answer(models: Models, drawn: list[str]) -> None:
    models.generator.script = "The Eiffel Tower was completed in 1889 [1]"
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    # The fake writes word by word: the page drew each longer draft.
    assert len(drawn) > 3 and all(a in b for a, b in itertools.pairwise(drawn))
    assert "1889" in drawn[-1]
    shown = page_text(at)
    assert "completed in 1889" in shown and "[1]" in shown
    # The drafts are gone: no caption, no cursor, once the checked answer is in.
    assert chat_view.DRAFT_CAPTION not in shown and chat_view.CURSOR.strip() not in shown


def test_the_app_replaces_an_unbacked_draft(models: Models, drawn: list[str]) -> None:
    models.generator.script = UNBACKED
    at = start()
    ask(at, "When was the Eiffel Tower completed?")
    assert any("1999" in d for d in drawn)
    shown = page_text(at)
    assert "1999" not in shown and UNGROUNDED_TEXT.split(".")[0] in shown


def test_draft_markdown_is_escaped_grey_and_provisional() -> None:
    md = chat_view.draft_markdown("Use *this* [1]")
    assert md.startswith(":gray[*") and md.endswith(chat_view.CURSOR)
    assert "\\*this\\*" in md and "\\[1\\]" in md  # document text never becomes markup
