"""The expected-answer-type check (docchat issue 28, item 2)."""

from __future__ import annotations

import pytest

from rag.answer.answer_types import compatible, expected_type


@pytest.mark.parametrize(("question", "wanted"), [
    ("What is the population of Germany?", "number"),
    ("How many launch pads were originally planned?", "number"),
    ("What percentage of the vote did she get?", "number"),
    ("Which city has the largest population?", "any"),  # a city: not a number
    ("What city has the largest population?", "any"),
    ("When was the Eiffel Tower built?", "date"),
    ("In which year did the war end?", "date"),
    ("Who discovered oxygen?", "name"),
    ("Where is the Louvre?", "name"),
    ("What is the capital of Austria?", "any"),
])
def test_expected_type(question: str, wanted: str) -> None:
    assert expected_type(question) == wanted


@pytest.mark.parametrize(("question", "answer", "ok"), [
    # the case: population asked, a place found
    ("What is the population of Germany?", "Denmark", False),
    ("What is the population of Germany?", "83,190,556", True),
    ("What is the population of Belgium in millions?", "11.5", True),
    ("How many launch pads were originally planned?", "three", True),
    ("How many launch pads were originally planned?", "several", True),
    ("How many launch pads were originally planned?", "Cape Kennedy", False),
    ("When was the Eiffel Tower built?", "1887", True),
    ("When was the Eiffel Tower built?", "in the late nineteenth century", True),
    ("When did the mission fly?", "after the war", True),
    ("When was the Eiffel Tower built?", "Gustave Eiffel", False),
    ("What date is given on the document?", "January 3, 2024", True),
    ("Who invented a high-pressure steam engine around 1800?", "Richard Trevithick", True),
    ("Who invented a high-pressure steam engine around 1800?", "1800", False),
    ("Where was he born?", "42", False),
    ("Where was he born?", "Dijon", True),
    ("What is the capital of Austria?", "1234", True),  # the question does not say
])
def test_compatible(question: str, answer: str, ok: bool) -> None:
    assert compatible(question, answer) is ok
