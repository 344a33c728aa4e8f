"""The seam for answer paths other than the reader's span: a route answers a kind of question.

A route is tried before the extractive reader. It either answers (a figure read from a table
row, a measure computed by code from cited figures, a yes/no with what decides it, a
summary or list built from a whole document) or returns ``None``, and the question goes on
to the reader's path as before. Routes get what they may need to look further than the
top-k passages: a search function and the chat model (to phrase, never to compute).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
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


_FILE_WORDS = re.compile(r"[a-z0-9]+")
_YEAR_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
_QUARTER = re.compile(r"(?<![a-z])q[1-4](?![0-9])|\bquarter", re.IGNORECASE)


def named_documents(question: str, names: Sequence[str], years: Sequence[int] = ()) -> list[str]:
    """The documents a question names by their file name: all the name's words
    ("steam engine" for Steam_engine.txt), or its first word, the owner, written out
    ("Activision Blizzard", "3M" for ACTIVISIONBLIZZARD_2019_10K.pdf). Of several by one
    owner, those whose name holds the asked (latest) year come first, then later ones
    (a filing shows the years before it too), then the rest."""
    asked = _FILE_WORDS.findall(question.lower())
    words = set(asked)
    # Runs of one to four words, squashed: "american water works" -> "americanwaterworks".
    runs = {"".join(asked[i:i + n]) for n in range(1, 5) for i in range(len(asked) - n + 1)}
    named: list[str] = []
    for name in names:
        stem = PurePosixPath(name).stem.lower().replace("_", " ").replace("-", " ")
        parts = _FILE_WORDS.findall(stem)
        if not parts:
            continue
        owner = parts[0]
        if set(parts) <= words or (len(owner) >= 2 and not owner.isdigit() and owner in runs):
            named.append(name)
    if years and len(named) > 1:
        latest = max(years)

        quarter_asked = _QUARTER.search(question) is not None

        def rank(name: str) -> tuple[int, bool]:
            found = [int(y) for y in _YEAR_IN_NAME.findall(name)]
            # A year's own report first; a quarter's only when a quarter is asked.
            quarterly = _QUARTER.search(PurePosixPath(name).stem) is not None
            return (0 if latest in found else (1 if any(y > latest for y in found) else 2),
                    quarterly != quarter_asked)

        named.sort(key=rank)
    return named
