"""The answering chain's small steps, pure functions: which text to search with (a
follow-up question leans on the previous one), retrieved documents as numbered sources,
whether the evidence is too weak to answer, decoding parameters from settings."""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from rag.answer.followups import resolve_follow_up
from rag.settings import Settings
from rag.types import DecodingParams, Source, heading_of

_PRONOUNS = frozenset({
    "it", "its", "it's", "they", "them", "their", "theirs", "he", "him", "his", "she", "her",
    "hers", "this", "that", "these", "those", "there", "then", "one", "ones", "former", "latter",
})
_FOLLOW_UP_MAX_WORDS = 5


def decoding_params(settings: Settings) -> DecodingParams:
    return DecodingParams(
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        repetition_penalty=settings.repetition_penalty,
    )


def is_follow_up(question: str) -> bool:
    words = re.findall(r"[\w']+", question.lower())
    return len(words) <= _FOLLOW_UP_MAX_WORDS or any(w in _PRONOUNS for w in words)


def search_query(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The text to retrieve with: a follow-up rewritten to name what the previous turns
    were about (``rag.answer.followups``); one no rewrite fits, glued to the previous
    question; any other question as asked.

    ``history`` holds (user question, assistant answer) turns, oldest first.
    """
    resolved = resolve_follow_up(question, history)
    if resolved != question:
        return resolved
    if history and is_follow_up(question):
        return f"{history[-1][0].strip()} {question.strip()}"
    return question


def to_sources(docs: Sequence[Document]) -> list[Source]:
    out: list[Source] = []
    for n, d in enumerate(docs, start=1):
        m = d.metadata
        page = m.get("page")
        out.append(Source(
            n=n,
            source=str(m.get("source", "")),
            page=None if page is None else int(page),
            score=float(m.get("score", 0.0) or 0.0),
            text=d.page_content,
            chunk_id=str(m.get("id", "")),
            start=int(m.get("start", 0) or 0),
            end=int(m.get("end", len(d.page_content)) or 0),
            heading=heading_of(str(m.get("header", ""))),
        ))
    return out


def weak_evidence(docs: Sequence[Document], threshold: float) -> bool:
    """No passage, or the best passage's cosine to the question is below the threshold.

    The cosine (``dense_score``), not the ranking score, is compared: RRF and BM25 scores
    are not on a scale a threshold can mean anything on.
    """
    if not docs:
        return True
    scores = [d.metadata.get("dense_score") for d in docs]
    known = [float(s) for s in scores if s is not None]
    return bool(known) and max(known) < threshold


def messages_of(dicts: Sequence[dict[str, str]]) -> list[BaseMessage]:
    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[d["role"]](content=d["content"]) for d in dicts]
