"""Follow-up questions rewritten to stand alone (docchat issue 28, item 1)."""

from __future__ import annotations

import pytest

from rag.answer.followups import resolve_follow_up, subject_of
from rag.answer.steps import search_query

# (previous question, its answer, follow-up, the follow-up rewritten)
PAIRS = [
    # "and its X?": the attribute of the previous question's subject
    ("What is the capital of Germany?", "Berlin [1]", "and its population?",
     "What is the population of Germany?"),
    ("Austria capital?", "Vienna [1]", "And its area?", "What is the area of Austria?"),
    ("What is the boiling point of water?", "100 degrees [1]", "and its freezing point?",
     "What is the freezing point of water?"),
    ("Who designed the Eiffel Tower?", "Gustave Eiffel [1]", "and its height?",
     "What is the height of the Eiffel Tower?"),
    ("Who was Albert Einstein?", "A physicist [1]", "and his wife?", "Who is Albert Einstein's wife?"),
    # "what about Y?" / "and Y?": the changed slot
    ("What is the capital of Germany?", "Berlin [1]", "what about France?",
     "What is the capital of France?"),
    ("What is the tallest mountain in Europe?", "Mont Blanc [1]", "What about Asia?",
     "What is the tallest mountain in Asia?"),
    ("What is the GDP of Japan?", "4.2 trillion [1]", "And China?", "What is the GDP of China?"),
    ("How many people lived in Berlin?", "3.6 million [1]", "and in Munich?",
     "How many people lived in Munich?"),
    ("Tell me about the Colosseum in Rome", "An amphitheatre [1]", "what about the Pantheon?",
     "Tell me about the Pantheon in Rome"),
    # a year: replaced, or added
    ("What was the population of Germany in 1950?", "70 million [1]", "and in 1990?",
     "What was the population of Germany in 1990?"),
    ("How many people lived in Berlin?", "3.6 million [1]", "and in 1990?",
     "How many people lived in Berlin in 1990?"),
    ("When did Marie Curie win the Nobel Prize in 1903?", "1903 [1]", "what about 1911?",
     "When did Marie Curie win the Nobel Prize in 1911?"),
    # pronouns
    ("Who designed the Eiffel Tower?", "Gustave Eiffel's company [1]", "When was it built?",
     "When was the Eiffel Tower built?"),
    ("Who designed the Eiffel Tower?", "Gustave Eiffel [1]", "Where was he born?",
     "Where was Gustave Eiffel born?"),
    ("Who invented the telephone?", "Alexander Graham Bell [1]", "When did he die?",
     "When did Alexander Graham Bell die?"),
    ("Who invented the telephone?", "Alexander Graham Bell [1]", "When was it invented?",
     "When was the telephone invented?"),
    ("When did Marie Curie win the Nobel Prize?", "1903 [1]", "Where was she born?",
     "Where was Marie Curie born?"),
    ("When did Marie Curie win the Nobel Prize?", "1903 [1]", "Who else won it?",
     "Who else won the Nobel Prize?"),
    ("What is the capital of Germany?", "Berlin [1]", "What is its area?", "What is Germany's area?"),
    ("Who was Albert Einstein?", "A physicist [1]", "What did his wife do?",
     "What did Albert Einstein's wife do?"),
    ("Tell me about the Colosseum in Rome", "An amphitheatre [1]", "When was it finished?",
     "When was the Colosseum finished?"),
    ("What is the capital of Germany?", "Berlin [1]", "How many people live there?",
     "How many people live in Germany?"),
    # not follow-ups: unchanged
    ("What is the capital of Germany?", "Berlin [1]", "What is photosynthesis?",
     "What is photosynthesis?"),
    ("What is the capital of Germany?", "Berlin [1]", "Who wrote Faust?", "Who wrote Faust?"),
    ("What is the capital of Germany?", "Berlin [1]", "How long does it take to fly to Paris?",
     "How long does it take to fly to Paris?"),
    ("Who designed the Eiffel Tower?", "Gustave Eiffel [1]", "When did Einstein publish his theory?",
     "When did Einstein publish his theory?"),
    ("What is the capital of Germany?", "Berlin [1]", "Is there a train from Berlin to Paris?",
     "Is there a train from Berlin to Paris?"),
    ("What is the capital of Germany?", "Berlin [1]", "Which river flows through Vienna?",
     "Which river flows through Vienna?"),
]


@pytest.mark.parametrize(("previous", "answer", "question", "expected"), PAIRS,
                         ids=[f"{p[2]}" for p in PAIRS])
def test_follow_up_is_rewritten_to_the_previous_subject(previous: str, answer: str, question: str,
                                                        expected: str) -> None:
    assert resolve_follow_up(question, [(previous, answer)]) == expected


def test_no_history_leaves_the_question_alone() -> None:
    assert resolve_follow_up("and its population?", []) == "and its population?"


def test_a_chain_of_follow_ups_keeps_the_first_subject() -> None:
    history = [("What is the capital of Germany?", "Berlin [1]"),
               ("and its population?", "83 million [1]")]
    assert resolve_follow_up("and France?", history) == "What is the population of France?"
    assert resolve_follow_up("When was it founded?", history) == "When was Germany founded?"


def test_he_without_a_person_to_stand_for_is_left_alone() -> None:
    # No name in the question, and the answer is no name: nothing "he" can be.
    history = [("Who invented the telephone?", "A Scottish-born inventor working in Boston, in 1876 [1]")]
    assert resolve_follow_up("When did he die?", history) == "When did he die?"


def test_subject_of_prefers_the_thing_over_where_it_is() -> None:
    assert subject_of("Tell me about the Colosseum in Rome") == "the Colosseum"
    assert subject_of("What is the capital of Germany?") == "Germany"
    assert subject_of("What is the boiling point of water?") == "water"
    assert subject_of("Who invented the telephone?") == "the telephone"
    assert subject_of("What is the GDP of Japan?") == "Japan"
    assert subject_of("Why?") is None


def test_search_query_uses_the_rewrite_and_falls_back_to_gluing() -> None:
    history = [("What is the capital of Germany?", "Berlin [1]")]
    assert search_query("and its population?", history) == "What is the population of Germany?"
    # No subject to substitute ("Why?" names nothing): the previous question is glued on.
    assert search_query("Why?", history) == "What is the capital of Germany? Why?"
    standalone = "Which painting does the Louvre museum in Paris hold?"
    assert search_query(standalone, history) == standalone
