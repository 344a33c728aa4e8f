"""Citation markers: parsing, cleaning, and mapping answers without markers to passages."""

from __future__ import annotations

import pytest

from rag.answer.citations import cite, first_line, normalize, parse_markers, says_unknown, strip_markers
from rag.types import Source

SOURCES = [
    Source(n=1, source="a.txt", page=None, score=0.9, text="The Eiffel Tower is in Paris."),
    Source(n=2, source="b.pdf", page=2, score=0.8, text="It was completed in 1889 by Gustave Eiffel."),
    Source(n=3, source="c.md", page=None, score=0.7, text="Paris is the capital of France."),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("In 1889 [2].", [2]), ("A [1][3] and [1]", [1, 3]), ("see [2, 1]", [2, 1]), ("none", [])],
)
def test_parse_markers(text: str, expected: list[int]) -> None:
    assert parse_markers(text) == expected


def test_valid_markers_kept_invalid_dropped() -> None:
    c = cite("1889 [2] [7]", SOURCES)
    assert c.cited == [2]
    assert c.text == "1889 [2]"


def test_only_invalid_markers_are_replaced_by_mapping() -> None:
    c = cite("1889 [9]", SOURCES)
    assert c.cited == [2] and c.text == "1889 [2]"


def test_marker_on_a_passage_without_the_answer_is_remapped() -> None:
    # Passage 3 shares no word with "1889": the model's [3] would send the reader astray.
    c = cite("1889 [3]", SOURCES)
    assert c.cited == [2] and c.text == "1889 [2]"


def test_answer_without_marker_mapped_to_containing_passage() -> None:
    c = cite("Gustave Eiffel", SOURCES)
    assert c.cited == [2]
    assert c.text == "Gustave Eiffel [2]"


def test_answer_in_several_passages_cites_each() -> None:
    c = cite("Paris", SOURCES)
    assert c.cited == [1, 3]
    assert c.text.endswith("[1][3]")


def test_no_containing_passage_falls_back_to_word_overlap() -> None:
    c = cite("the capital city of France", SOURCES)
    assert c.cited == [3]


def test_unrelated_answer_still_cites_top_passage() -> None:
    assert cite("zebra", SOURCES).cited == [1]


@pytest.mark.parametrize(
    "reply",
    ["I don't know.", "I do not know", "The passages do not contain the answer.",
     "This is not mentioned in the context.", "", " [1] "],
)
def test_says_unknown(reply: str) -> None:
    assert says_unknown(reply)


@pytest.mark.parametrize("reply", ["1889 [2]", "Paris", "Nobody knows the exact date [1]"])
def test_real_answers_are_not_unknown(reply: str) -> None:
    assert not says_unknown(reply)


def test_helpers() -> None:
    assert strip_markers("1889 [2].") == "1889 ."
    assert normalize("The  Eiffel, Tower!") == "eiffel tower"
    assert first_line("\n 1889 [2]\nAlso, more rambling") == "1889 [2]"
