"""The chat: history in bubbles, the answer streamed, its sources underneath.

Every string that comes from a document or from the model is escaped (ui.highlight)
before it reaches ``st.markdown``: document text is shown as text, never as markup.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import streamlit as st

from rag.types import Answer, Source
from ui.answer_settings import AnswerOptions
from ui.highlight import answer_markdown, escape_markdown, highlighted_markdown

if TYPE_CHECKING:
    from rag.chain import RagChain

log = logging.getLogger(__name__)

CURSOR = " ▌"
# What Source.score is in each retrieval mode: the ranking score, not a probability.
SCORE_NAME = {"hybrid": "rank fusion", "dense": "cosine", "bm25": "BM25"}


@dataclass
class Turn:
    question: str
    answer: str
    abstained: bool
    sources: list[Source] = field(default_factory=list)
    cited: list[int] = field(default_factory=list)
    seconds: float = 0.0
    mode: str = ""  # retrieval mode, which says what the sources' scores are
    evidence: list[str] = field(default_factory=list)  # quoted sentences the answer rests on
    method: str = "generated"  # "extracted": the decoder's reply could not be backed up


def history_pairs(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    """(question, answer) pairs for the chain, which rewrites follow-ups with them."""
    return [(t.question, t.answer) for t in turns if not t.abstained]


def source_heading(s: Source, cited: bool, mode: str = "") -> str:
    page = f" · page {s.page}" if s.page is not None else ""
    mark = " · :green-badge[cited]" if cited else ""
    kind = f" ({SCORE_NAME[mode]})" if mode in SCORE_NAME else ""
    return f"**\\[{s.n}\\] {escape_markdown(s.source)}**{page} · score {s.score:.3g}{kind}{mark}"


def render_sources(turn: Turn, *, expanded: bool) -> None:
    if not turn.sources:
        return
    title = "Nearest passages" if turn.abstained else f"Sources ({len(turn.sources)})"
    with st.expander(title, expanded=expanded):
        for s in turn.sources:
            with st.container(border=True):
                st.markdown(source_heading(s, s.n in turn.cited and not turn.abstained, turn.mode))
                # An abstention has no answer to support, so nothing is highlighted.
                body = (
                    escape_markdown(s.text) if turn.abstained else highlighted_markdown(s.text, turn.answer)
                )
                st.markdown(body)


def render_answer_text(turn: Turn) -> None:
    if turn.abstained:
        st.warning(
            escape_markdown(turn.answer) or "The documents do not answer this question.",
            icon=":material/search_off:",
        )
    else:
        st.markdown(answer_markdown(turn.answer))
        for quote in turn.evidence:
            st.caption(escape_markdown(quote))
        if turn.method == "extracted":
            st.caption("Quoted from the passage: the model's own wording could not be backed up.")
    if turn.seconds:
        st.caption(f"{turn.seconds:.1f} s")


def render_history(turns: Sequence[Turn]) -> None:
    for i, t in enumerate(turns):
        with st.chat_message("user"):
            st.markdown(escape_markdown(t.question))
        # One container per answer, like the slot ask() streams into: the same element
        # layout on the next run, so no stale copy of an answer lingers while it re-runs.
        with st.chat_message("assistant"), st.container():
            render_answer_text(t)
            render_sources(t, expanded=i == len(turns) - 1)


def ask(chain: RagChain, question: str, turns: Sequence[Turn], options: AnswerOptions) -> Turn | None:
    """Stream one answer into the page; the finished turn, or None after an error shown."""
    from rag.chain import Done, Retrieved, Token

    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        placeholder = st.empty()
        placeholder.caption("Searching your documents…")
        text = ""
        sources: list[Source] = []
        abstained = False
        answer: Answer | None = None
        t0 = time.perf_counter()
        try:
            events = chain.stream(
                question,
                history_pairs(turns),
                k=options.k,
                mode=options.mode,
                params=options.params,
            )
            for event in events:
                if isinstance(event, Retrieved):
                    sources, abstained = list(event.sources), event.abstained
                    placeholder.caption(
                        "No passage is close enough to answer from…"
                        if abstained
                        else f"Read {len(sources)} passages, writing the answer…"
                    )
                elif isinstance(event, Token):
                    text += event.text
                    placeholder.markdown(answer_markdown(text) + CURSOR)
                elif isinstance(event, Done):
                    answer = event.answer
        except Exception as e:
            # The page edge: whatever went wrong below, the user gets one readable line
            # and the server log gets the traceback.
            log.exception("answering %r failed", question)
            placeholder.error(f"Could not answer: {error_text(e)}", icon=":material/error:")
            return None
        if answer is not None:
            turn = Turn(
                question,
                answer.text,
                answer.abstained,
                list(answer.sources) or sources,
                list(answer.cited),
                time.perf_counter() - t0,
                options.mode,
                list(answer.evidence),
                answer.method,
            )
        else:
            turn = Turn(question, text, abstained, sources, [], time.perf_counter() - t0, options.mode)
        with placeholder.container():
            render_answer_text(turn)
            render_sources(turn, expanded=True)
        return turn


def error_text(e: BaseException) -> str:
    """One line saying what failed and what to do.

    The project's own errors (index, settings, files) already say that; anything else is a
    bug, named by its type so the server log can be searched for the traceback.
    """
    from rag.store import StoreError

    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, StoreError | OSError | ValueError):
        return msg
    return f"unexpected {type(e).__name__} ({msg}). Try again; if it keeps failing, see the server log."
