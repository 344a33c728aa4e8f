"""Questions with two parts: each part answered through the whole chain, then combined.

Fake encoder, reader and decoder (rag.testing) over a real on-disk index, as in
test_chain_reader.py.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from rag.answer.build import build_chain
from rag.answer.chain import ABSTAIN_TEXT, ChainEvent, Done, Draft, RagChain, Retrieved, Token
from rag.answer.parts import Part, merge_sources, missing_text, renumber, split_question
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, FakeReader, write_index
from rag.types import Source

DOCS = {
    "history.txt": "The Kestrel project started in 2019 in Oslo.",
    "goal.txt": "The goal of the Kestrel project is mapping rivers.",
    "ferry.txt": "The first ferry leaves from Pier 4 every morning.",
}
TWO = "When did the Kestrel project start, and what is its goal?"
START = "When did the Kestrel project start?"
GOAL = "What is the Kestrel project's goal?"
FERRY = "Where does the first ferry leave from, and at what time?"
WHERE = "Where does the first ferry leave from?"
WHEN = "At what time does the first ferry leave from?"


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return write_index(tmp_path / "idx", DOCS, FakeEncoder())


def chain_with(settings: Settings, index_dir: Path, reader: FakeReader,
               gen: FakeGenerator | None = None) -> RagChain:
    s = settings.model_copy(update={"abstain_threshold": 0.1, "k": 3, "reader": True,
                                    "reader_min_margin": 0.5})
    return build_chain(s, index_dir, encoder=FakeEncoder(), generator=gen or FakeGenerator(),  # type: ignore[arg-type]
                       reader=reader)  # type: ignore[arg-type]


def cited_source(answer_text: str, words: str, sources: list[Source]) -> str:
    """The file the marker right after ``words`` points at, in the answer's numbering."""
    m = re.search(re.escape(words) + r"[^\[]*\[(\d+)\]", answer_text)
    assert m, (words, answer_text)
    return sources[int(m.group(1)) - 1].source


def check_stream(events: list[ChainEvent]) -> Done:
    """One Retrieved first, one Done last, the Tokens spelling the final answer."""
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Done)
    assert sum(isinstance(e, Retrieved) for e in events) == 1
    assert sum(isinstance(e, Done) for e in events) == 1
    done = events[-1]
    if not done.answer.abstained:
        assert "".join(e.text for e in events if isinstance(e, Token)) == done.answer.text
    assert events[0].sources == done.answer.sources
    return done


# --- splitting -------------------------------------------------------------------------------


def test_two_questions_are_split_and_the_pronoun_gets_the_subject() -> None:
    assert split_question(TWO) == [Part("When did the Kestrel project start", START),
                                   Part("what is its goal", GOAL)]
    # A fragment asks the first question again about something else.
    assert [p.question for p in split_question(FERRY)] == [WHERE, WHEN]
    assert [p.question for p in split_question("When was the tower built? How tall is it?")] == [
        "When was the tower built?", "How tall is the tower?"]
    assert [p.question for p in split_question("Who wrote Hamlet and when was it written?")] == [
        "Who wrote Hamlet?", "When was Hamlet written?"]


@pytest.mark.parametrize("question", [
    "Who were Lewis and Clark?",
    "What is the difference between X and Y?",
    "What is the difference between what X says and what Y says?",
    "What did Lewis and Clark find and do?",  # "and do": no second question in it
    "Salt and pepper and what else?",  # not a question the parts could stand for
])
def test_one_question_with_and_inside_is_not_split(question: str) -> None:
    assert split_question(question) == [Part(question, question)]


def test_missing_part_reads_as_a_sentence() -> None:
    parts = split_question(FERRY)
    assert missing_text(parts[1]) == "The documents do not say at what time."
    assert missing_text(split_question(TWO)[1]) == "The documents do not say what its goal is."
    # No tense to guess for "when did it start": the question is quoted instead.
    assert missing_text(parts[0]) == f'The documents do not answer "{WHERE}"'


def test_sources_are_merged_once_and_markers_renumbered() -> None:
    a = Source(1, "a.txt", None, 0.9, "A", chunk_id="a")
    b = Source(2, "b.txt", None, 0.8, "B", chunk_id="b")
    c = Source(1, "c.txt", None, 0.7, "C", chunk_id="c")
    merged = merge_sources([[a, b], [c, Source(2, "a.txt", None, 0.5, "A", chunk_id="a")]])
    assert [(s.n, s.source) for s in merged.sources] == [(1, "a.txt"), (2, "b.txt"), (3, "c.txt")]
    assert merged.numbers == [{1: 1, 2: 2}, {1: 3, 2: 1}]
    assert renumber("x [1] y [1, 2]", merged.numbers[1]) == "x [3] y [3, 1]"


# --- through the chain -----------------------------------------------------------------------


def test_both_parts_are_answered_each_with_its_own_citation(settings: Settings, index_dir: Path) -> None:
    reader = FakeReader({START: "2019", GOAL: "mapping rivers"})
    events = list(chain_with(settings, index_dir, reader).stream(TWO))
    a = check_stream(events).answer
    assert not a.abstained
    assert cited_source(a.text, "2019", a.sources) == "history.txt"
    assert cited_source(a.text, "mapping rivers", a.sources) == "goal.txt"
    assert a.text.index("2019") < a.text.index("mapping rivers")  # in the order asked
    assert sorted(a.cited) == sorted({int(n) for n in re.findall(r"\[(\d+)\]", a.text)})
    assert any("2019" in q for q in a.evidence) and any("mapping rivers" in q for q in a.evidence)
    # Each part was read as its own standalone question.
    assert [q for q, _ in reader.calls] == [START, GOAL]
    assert len({s.chunk_id for s in a.sources}) == len(a.sources)  # a shared passage shown once


def test_a_part_the_documents_do_not_answer_is_said_to_be_missing(
        settings: Settings, index_dir: Path) -> None:
    # The ferry page names the pier, not the time: "06:30" is in no passage.
    reader = FakeReader({WHERE: "Pier 4", WHEN: "06:30"})
    a = check_stream(list(chain_with(settings, index_dir, reader).stream(FERRY))).answer
    assert not a.abstained
    assert cited_source(a.text, "Pier 4", a.sources) == "ferry.txt"
    assert a.text.endswith("The documents do not say at what time.")
    assert "06:30" not in a.text


def test_abstains_only_when_every_part_does(settings: Settings, index_dir: Path) -> None:
    reader = FakeReader({WHERE: "Pier 9", WHEN: "06:30"})
    events = list(chain_with(settings, index_dir, reader).stream(FERRY))
    a = check_stream(events).answer
    assert (a.text, a.abstained, a.method, a.cited) == (ABSTAIN_TEXT, True, "abstained", [])


def test_async_path_combines_the_same_way(settings: Settings, index_dir: Path) -> None:
    reader = FakeReader({START: "2019", GOAL: "mapping rivers"})
    chain = chain_with(settings, index_dir, reader)

    async def collect() -> list[ChainEvent]:
        return [e async for e in chain.astream(TWO)]

    events = asyncio.run(collect())
    a = check_stream(events).answer
    assert a.text == chain.invoke(TWO).text


def test_drafts_of_both_parts_come_before_the_checked_answer(settings: Settings, index_dir: Path) -> None:
    reader = FakeReader({START: "2019", GOAL: "mapping rivers"})
    events = list(chain_with(settings, index_dir, reader).stream(TWO))
    first_token = next(i for i, e in enumerate(events) if isinstance(e, Token))
    drafts = [e for e in events if isinstance(e, Draft)]
    assert drafts and all(events.index(d) < first_token for d in drafts)
    done = events[-1]
    assert isinstance(done, Done) and done.answer.timings["first_draft_s"] <= done.answer.timings["total_s"]


def test_one_part_question_with_and_is_read_whole(settings: Settings, index_dir: Path) -> None:
    q = "What is the difference between the goal and the ferry?"
    reader = FakeReader()
    list(chain_with(settings, index_dir, reader).stream(q))
    assert [c[0] for c in reader.calls] == [q]
