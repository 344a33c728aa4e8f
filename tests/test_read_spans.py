"""How the reader's token spans become answer text (no model needed)."""

from __future__ import annotations

import pytest

from rag.models.span_reader import SENTENCE_INSIDE, trim_span


@pytest.mark.parametrize(("text", "answer"), [
    ("“Vienna”,", "Vienna"),
    ("(1889)", "1889"),
    ("Area (km2)", "Area (km2)"),
    ("(Area (km2)", "Area (km2)"),
    ("the working fluid.", "the working fluid"),
    ("(a) and (b)", "(a) and (b)"),
])
def test_answer_text_loses_surrounding_quotes_and_punctuation(text: str, answer: str) -> None:
    a, b = trim_span(text, 0, len(text))
    assert text[a:b] == answer


@pytest.mark.parametrize(("text", "crosses"), [
    ("Huardest gefburn”? Kjift", True),  # a question mark, then the next sentence
    ("the end of it. The start", True),
    ("said “no.” Then", True),
    ("U.S. Army", False),
    ("Dr. Smith", False),
    ("J. R. R. Tolkien", False),
    ("3.5 million", False),
])
def test_spans_never_run_across_a_sentence_end(text: str, crosses: bool) -> None:
    assert bool(SENTENCE_INSIDE.search(text)) is crosses
