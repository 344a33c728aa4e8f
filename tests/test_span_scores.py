"""The decoder's vote on the reader's candidates (rag.answer.span_scores), with scripted scores;
the real decoder's scores are exercised through the chain in test_answer_real.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rag.answer.build import build_chain
from rag.answer.span_scores import question_overlap, rescore, sentence_around
from rag.settings import Settings
from rag.testing import FakeEncoder, FakeGenerator, FakeReader, write_index
from rag.types import Span

PASSAGE = "The tower was designed by Maurice Koechlin. Gustave Eiffel's company built it in 1889."


def _span(text: str, margin: float) -> Span:
    at = PASSAGE.index(text)
    return Span(0, at, at + len(text), text, margin, 0.0)


class Votes:
    """Scores replies from a table; records what it was asked."""

    def __init__(self, votes: dict[str, float]) -> None:
        self.votes = votes
        self.asked: list[tuple[list[dict[str, str]], str]] = []

    def reply_log_probs(self, prompts: Sequence[Sequence[dict[str, str]]],
                        replies: Sequence[str]) -> list[float]:
        self.asked.extend((list(p), r) for p, r in zip(prompts, replies, strict=True))
        return [self.votes.get(r, -10.0) for r in replies]


def test_the_decoders_vote_can_reorder_close_candidates_but_not_outvote_the_reader() -> None:
    spans = [_span("Maurice Koechlin", 6.0), _span("Gustave Eiffel", 5.5), _span("1889", 2.5)]
    votes = Votes({"Maurice Koechlin": -4.0, "Gustave Eiffel": -1.0, "1889": -0.1})
    got = rescore("Who built the tower?", spans, [PASSAGE], votes, weight=0.25, min_margin=2.0)
    # 6.0 - 1.0 < 5.5 - 0.25: the decoder's clear preference wins a close call ...
    assert [s.text for s in got] == ["Gustave Eiffel", "Maurice Koechlin", "1889"]
    # ... but not a wide one: 2.5 - 0.025 stays last.
    prompt, reply = votes.asked[1]
    assert reply == "Gustave Eiffel"
    assert prompt[-1]["content"] == ("Context: Gustave Eiffel's company built it in 1889.\n"
                                     "Question: Who built the tower?")


def test_spans_the_reader_does_not_believe_are_not_candidates() -> None:
    spans = [_span("Maurice Koechlin", 6.0), _span("Gustave Eiffel", 1.0)]
    votes = Votes({"Gustave Eiffel": 0.0})
    got = rescore("Who built the tower?", spans, [PASSAGE], votes, weight=10.0, min_margin=2.0)
    assert got == spans and votes.asked == []  # one candidate only: nothing to vote on
    assert rescore("q", spans, [PASSAGE], votes, weight=0.0, min_margin=0.0) == spans


def test_a_span_whose_sentence_repeats_the_question_can_win_a_close_call_without_a_decoder() -> None:
    spans = [_span("1889", 6.0), _span("Maurice Koechlin", 5.0), _span("tower", 1.0)]
    # "designed" stands in Koechlin's sentence only: overlap 1 against 0.
    got = rescore("Who designed it?", spans, [PASSAGE], None, weight=0.25, min_margin=2.0,
                  overlap_weight=3.0)
    assert [s.text for s in got] == ["Maurice Koechlin", "1889", "tower"]
    # A wide call stands, and weight 0 changes nothing.
    assert rescore("Who designed it?", spans, [PASSAGE], None, weight=0.25, min_margin=2.0,
                   overlap_weight=0.5) == spans
    assert rescore("Who designed it?", spans, [PASSAGE], None, weight=0.25, min_margin=2.0) == spans


def test_sentence_around_a_span_that_runs_past_its_sentence() -> None:
    assert sentence_around(PASSAGE, _span("Koechlin. Gustave", 3.0)) == (
        "The tower was designed by Maurice Koechlin. Gustave")


class ScoringGenerator(FakeGenerator):
    def __init__(self, script: str, votes: dict[str, float]) -> None:
        super().__init__(script=script)
        self.scorer = Votes(votes)

    def reply_log_probs(self, prompts: Sequence[Sequence[dict[str, str]]],
                        replies: Sequence[str]) -> list[float]:
        return self.scorer.reply_log_probs(prompts, replies)


def test_the_chain_lets_a_local_decoder_vote_and_then_checks_its_reply_as_ever(
        settings: Settings, tmp_path: Path) -> None:
    text = "Maurice Koechlin designed the tower in Paris. Gustave Eiffel built the tower."
    index_dir = write_index(tmp_path / "idx", {"tower.txt": text}, FakeEncoder())
    question = "Who designed or built the tower in Paris?"
    s = settings.model_copy(update={"abstain_threshold": -1.0, "k": 1, "reader": True,
                                    "reader_min_margin": 0.5, "reader_decoder_weight": 1.0})
    # The fake reader proposes "Maurice" (3 shared words) then "Gustave" (2) ...
    gen = ScoringGenerator("Gustave [1]", {"Gustave": -0.1, "Maurice": -3.0})
    a = build_chain(s, index_dir, encoder=FakeEncoder(), generator=gen, reader=FakeReader()).invoke(
        question)
    assert [r for _, r in gen.scorer.asked] == ["Maurice", "Gustave"]
    # ... the decoder's vote puts "Gustave" first, so it reads that sentence and may say it.
    assert (a.text, a.method) == ("Gustave [1]", "generated")
    assert "Gustave Eiffel built" in gen.prompts[0][-1]["content"]
    # Weight 0: no vote; the reader's first span stands and the same reply is not shown.
    plain = ScoringGenerator("Gustave [1]", {})
    s0 = s.model_copy(update={"reader_decoder_weight": 0.0})
    a = build_chain(s0, index_dir, encoder=FakeEncoder(), generator=plain, reader=FakeReader()).invoke(
        question)
    assert plain.scorer.asked == [] and a.text == "Maurice [1]" and a.method == "extracted"


def test_question_overlap_counts_the_questions_words_around_the_span_not_in_it() -> None:
    rankine = "The efficiency of a Rankine cycle is usually limited by the working fluid."
    fluid = Span(0, rankine.index("the working"), len(rankine) - 1, "the working fluid", 3.0, 0.0)
    # efficiency, rankine, cycle, limit(s/ed): every content word of the question is there.
    assert question_overlap("What limits the Rankine cycle's efficiency?", rankine, fluid) == 1.0
    # "Koechlin" answers a question about the designer; the question's words are its sentence's.
    koechlin = _span("Maurice Koechlin", 3.0)
    assert question_overlap("Who designed the tower?", PASSAGE, koechlin) == 1.0
    # A span in a sentence about something else: none of the question's words around it.
    assert question_overlap("What river flows through Paris?", PASSAGE, koechlin) == 0.0
    # Words of the span itself do not count as support: of designed, maurice and koechlin
    # only "designed" is around it.
    assert question_overlap("Who designed Maurice Koechlin?", PASSAGE, koechlin) == 1 / 3


def test_a_weak_span_in_a_sentence_about_something_else_is_refused(
        settings: Settings, tmp_path: Path) -> None:
    text = "Maurice Koechlin designed the tower in Paris. Gustave Eiffel built the tower."
    index_dir = write_index(tmp_path / "idx", {"tower.txt": text}, FakeEncoder())
    # The fake reader answers "Maurice" with margin (shared words - 1) for both questions.
    asked = "Who designed the tower in Paris?"  # margin 2; its sentence repeats the question
    off = "Who painted the tower in Paris in 1950?"  # margin 1; 2 of 4 words: support 1 + 5
    for question, min_support, refused in ((asked, 7.0, False), (off, 7.0, True),
                                           (off, 5.0, False), (off, 0.0, False)):
        s = settings.model_copy(update={"abstain_threshold": -1.0, "k": 1, "reader": True,
                                        "reader_min_margin": 0.5, "reader_decoder_weight": 0.0,
                                        "reader_min_support": min_support})
        a = build_chain(s, index_dir, encoder=FakeEncoder(), generator=FakeGenerator(script="Maurice [1]"),
                        reader=FakeReader()).invoke(question)
        assert a.abstained is refused, (question, min_support, a)


def test_passages_far_from_the_question_are_answered_from_only_when_the_reader_is_sure(
        settings: Settings, tmp_path: Path) -> None:
    text = "Maurice Koechlin designed the tower in Paris. Gustave Eiffel built the tower."
    index_dir = write_index(tmp_path / "idx", {"tower.txt": text}, FakeEncoder())
    asked = "Who designed the tower in Paris?"  # support 2 + 10 x 1 = 12
    off = "Who painted the tower in Paris in 1950?"  # support 1 + 10 x 2/4 = 6
    # No cosine reaches the threshold (2 > any cosine): every question has weak evidence.
    for question, confident, refused in ((asked, 0.0, True), (asked, 10.0, False),
                                         (asked, 13.0, True), (off, 10.0, True)):
        s = settings.model_copy(update={"abstain_threshold": 2.0, "k": 1, "reader": True,
                                        "reader_min_margin": 0.5, "reader_decoder_weight": 0.0,
                                        "reader_min_support": 5.0,
                                        "reader_confident_support": confident})
        gen = FakeGenerator(script="Maurice [1]")
        a = build_chain(s, index_dir, encoder=FakeEncoder(), generator=gen,
                        reader=FakeReader()).invoke(question)
        assert a.abstained is refused, (question, confident, a)
        # Refused before reading: the decoder was never asked.
        assert (gen.prompts == []) is refused
