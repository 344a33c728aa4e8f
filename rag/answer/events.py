"""The chain's events and the decision on the decoder's reply.

Events (``Retrieved``, ``Draft``..., ``Token``..., ``Done``) are what ``RagChain.stream``
yields; ``Plan`` is everything decided before the decoder runs, ``Reply`` the decoder's
reply as it comes; ``decide`` turns a finished reply into the answer the user may read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage

from rag.answer.citations import cite, says_unknown
from rag.answer.lookup import is_lookup
from rag.answer.verify import Evidence, agrees, competing, supported
from rag.types import Answer, Source, Span

#: What the user reads when the documents do not answer the question.
ABSTAIN_TEXT = "The documents do not contain an answer to this question."
UNGROUNDED_TEXT = (
    "I could not find an answer in the documents that I can back up. "
    "The closest passages are below."
)
#: The decoder's reply must state the reader's best span: allowing any of the best three let
#: the 135M decoder pick a wrong candidate (F1 20 alone, against the reader's 66).
AGREE_TOP = 1

@dataclass(frozen=True)
class Retrieved:
    sources: list[Source]
    abstained: bool
    search_query: str = ""


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Draft:
    """A piece of the decoder's reply as it is written, not yet checked: for a page to show
    as provisional (the final text comes in Tokens and Done, and may differ). A client that
    must never show unbacked text (the HTTP API) ignores these."""

    text: str


@dataclass(frozen=True)
class Done:
    answer: Answer


ChainEvent = Retrieved | Draft | Token | Done


@dataclass
class Plan:
    """Everything decided before the decoder runs."""

    question: str
    query: str
    shown: list[Source]
    timings: dict[str, float]
    t0: float
    answer: Answer | None = None  # decided without the decoder (refusal)
    messages: list[BaseMessage] = field(default_factory=list)
    prompt_sources: list[Source] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # what the decoder read of each evidence
    spans: list[Span] = field(default_factory=list)


@dataclass
class Reply:
    pieces: list[str] = field(default_factory=list)
    stopped: bool = False  # ended at a line break (a complete one-line reply)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def decide(plan: Plan, reply: str, *, reader: bool) -> Answer:
    """The answer the user gets for the decoder's ``reply``: it, cited, when it is backed up
    (and, with the reader, agrees with its best span); else the reader's span with its
    sentence; else a refusal."""
    shown, timings = plan.shown, plan.timings
    if not reader:
        if not reply or says_unknown(reply):
            return Answer(ABSTAIN_TEXT, True, shown, [], timings, method="abstained")
        # supported() on one passage implies most of the reply's words are in the passages.
        if not any(supported(reply, s.text) for s in plan.prompt_sources):
            return Answer(UNGROUNDED_TEXT, True, shown, [], timings, method="abstained")
        cited = cite(reply, plan.prompt_sources)
        return Answer(cited.text, False, shown, cited.cited, timings)
    # Checked against what the decoder read, not the whole passage: a name it adds from
    # elsewhere in the passage (another row of the table) is its own invention.
    backing = [e for e, seen in zip(plan.evidence, plan.read, strict=True) if supported(reply, seen)]
    if reply and not says_unknown(reply) and backing and agrees(reply, plan.spans[:AGREE_TOP]):
        cited = cite(reply, [e.source for e in backing])
        quotes = [e.quote() for e in backing if e.source.n in cited.cited] or [backing[0].quote()]
        return Answer(cited.text, False, shown, cited.cited, timings, evidence=quotes)
    # The decoder's reply cannot be backed up: the reader's span, and where it stands.
    best = plan.evidence[0]
    span = best.span or plan.spans[0]
    # A looked-up span is checked against what was looked up (a document's name is not
    # in its text); the reader's against the passage.
    backed_by = plan.read[0] if is_lookup(span) else best.source.text
    if not supported(span.text, backed_by):
        # Checked like the decoder's words: nothing is shown as an answer unbacked.
        return Answer(ABSTAIN_TEXT, True, shown, [], timings, method="abstained")
    text = f"{span.text} [{best.source.n}]"
    return Answer(text, False, shown, [best.source.n], timings, evidence=[best.quote()],
                  method="extracted", overruled=competing(reply, span.text))
