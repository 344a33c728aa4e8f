"""The seam for answer paths other than the reader's span: a route answers a kind of question.

A route is tried before the extractive reader. It either answers (a figure read from a table
row, a measure computed by code from cited figures, a yes/no with what decides it, a
summary or list built from a whole document) or returns ``None``, and the question goes on
to the reader's path as before. Routes get what they may need to look further than the
top-k passages: a search function and the chat model (to phrase, never to compute).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel

from rag.types import Answer, DecodingParams, Source

#: ``search(query, k)``: the chain's own retrieval (same retriever, same mode).
Search = Callable[[str, int], list[Document]]


@dataclass
class RouteContext:
    """What the chain knows when a route is asked."""

    question: str
    history: Sequence[tuple[str, str]]
    docs: list[Document]  # retrieved for the question (after the follow-up rewrite)
    sources: list[Source]  # the same, numbered as shown to the user
    search: Search
    llm: BaseChatModel
    params: DecodingParams
    timings: dict[str, float] = field(default_factory=dict)


class Route(Protocol):
    """One answer path. ``None``: not this route's kind of question, or nothing it can back up
    and the reader's path may still answer; a refusal it is sure of is an abstained Answer."""

    def __call__(self, ctx: RouteContext) -> Answer | None: ...
