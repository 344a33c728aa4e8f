"""The chat: history in bubbles, the answer streamed (with a stop button), its sources.

Every string that comes from a document or from the model is escaped (ui.highlight)
before it reaches ``st.markdown``: document text is shown as text, never as markup.

While an answer is written the page script is inside ``ask``; any click (Stop, a new
question, a setting) makes Streamlit interrupt it and run the page again. ``ask`` keeps
what it has written in ``st.session_state["writing"]`` until it finishes, so the next run
knows an answer was cut short: ``resume_interrupted`` saves it as stopped (Stop) or puts
its question back at the head of the queue (anything else), and nothing is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from rag.types import Answer, Source
from ui.answer_settings import AnswerOptions
from ui.chat_store import Turn
from ui.highlight import answer_markdown, escape_markdown
from ui.source_view import render_citations, render_sources

if TYPE_CHECKING:
    from rag.answer.chain import RagChain

log = logging.getLogger(__name__)

CURSOR = " ▌"
#: Above the decoder's words while they are written and not yet checked.
DRAFT_CAPTION = "Checking against the passages…"

#: On a phone the page keeps the chat input's end in view, so the last answer's expanded
#: sources pushed the answer itself off-screen (390 px wide). There they scroll in a box
#: of at most a third of the screen, under the answer.
NARROW_SCREEN_CSS = """<style>
@media (max-width: 640px) {
  [data-testid="stChatMessage"] [data-testid="stExpanderDetails"] {
    max-height: 33vh;
    overflow-y: auto;
  }
}
</style>"""

__all__ = ["Turn", "ask", "error_text", "history_pairs", "render_history"]


def history_pairs(turns: Sequence[Turn]) -> list[tuple[str, str]]:
    """(question, answer) pairs for the chain, which rewrites follow-ups with them."""
    return [(t.question, t.answer) for t in turns if not (t.abstained or t.stopped or t.error)]


def timing_caption(turn: Turn) -> str:
    """What the time went on, from the chain's own timings (model loading is not in them)."""
    if not turn.seconds:
        return ""
    parts = [f"{turn.seconds:.1f} s"]
    t = turn.timings
    if "retrieve_s" in t:
        parts.append(f"search {t['retrieve_s']:.1f} s")
    if "first_draft_s" in t and not turn.abstained:
        parts.append(f"first draft after {t['first_draft_s']:.1f} s")
    if "first_token_s" in t and not turn.abstained:
        parts.append(f"first words after {t['first_token_s']:.1f} s")
    if "model_load_s" in t:
        parts.append(f"before it, the language model was loaded ({t['model_load_s']:.1f} s, once per start)")
    return " · ".join(parts)


def render_answer_text(turn: Turn, key: str) -> None:
    if turn.error:
        # Kept in the chat with its question, so nothing the user asked disappears.
        st.error(escape_markdown(turn.error), icon=":material/error:")
        return
    if turn.abstained:
        st.warning(
            escape_markdown(turn.answer) or "The documents do not answer this question.",
            icon=":material/search_off:",
        )
    else:
        st.markdown(answer_markdown(turn.answer, anchor=key))
        # The sentence the answer stands on, with its place: for the reader's span
        # ("extracted") this is simply the answer's source, so no note about the decoder
        # (users read "could not be backed up" on nearly every answer as a failure).
        for quote in turn.evidence:
            st.caption(escape_markdown(quote))
        if turn.overruled:
            st.caption(
                f"The language model's reply (“{escape_markdown(turn.overruled)}”) disagreed with the "
                "passage, so the passage's own answer is shown."
            )
    if turn.stopped:
        st.caption("Stopped before the answer was finished.")
    if turn.truncated:
        st.caption(
            "The answer reached its length limit and was cut at its last full sentence; "
            "raise **Longest answer** in the sidebar and regenerate for a longer one."
        )
    if caption := timing_caption(turn):
        st.caption(caption)


def _regenerate(chat_key: str, question: str) -> None:
    item = {"chat": chat_key, "question": question, "regenerate": "1"}
    st.session_state.setdefault("queue", []).insert(0, item)


def render_actions(turn: Turn, key: str, chat_key: str, last: bool) -> None:
    row = st.container(horizontal=True)  # sized to the buttons, whatever the page width
    with row.popover("Copy", icon=":material/content_copy:"):
        # The code block has the browser's copy button; the text is exactly the answer.
        st.code(turn.answer, language=None, wrap_lines=True)
    if last:
        row.button(
            "Regenerate",
            icon=":material/refresh:",
            key=f"regen_{key}",
            on_click=_regenerate,
            args=(chat_key, turn.question),
            help="Answer this question again (the settings in the sidebar apply).",
        )


def render_history(turns: Sequence[Turn], chat_key: str, documents_dir: Any, rrf_k: int) -> None:
    for i, t in enumerate(turns):
        key = f"t{i}"
        with st.chat_message("user"):
            st.markdown(escape_markdown(t.question))
        # One container per answer, like the slot ask() streams into: the same element
        # layout on the next run, so no stale copy of an answer lingers while it re-runs.
        with st.chat_message("assistant"), st.container():
            render_answer_text(t, key)
            render_citations(t, key, documents_dir)
            render_sources(t, key, documents_dir, rrf_k, expanded=i == len(turns) - 1)
            render_actions(t, key, chat_key, last=i == len(turns) - 1)


def render_queue(queue: Sequence[dict[str, str]], chat_key: str) -> None:
    """Questions waiting for the answer being written: shown, never dropped."""
    for q in queue:
        if q["chat"] == chat_key:
            with st.chat_message("user"):
                st.markdown(escape_markdown(q["question"]))
                st.caption("Queued: answered after the current one.")


def resume_interrupted() -> tuple[str, Turn] | None:
    """After an interrupted run: (chat key, stopped turn) to save (Stop), or None (nothing
    was interrupted, or its question was put back at the head of the queue)."""
    writing = st.session_state.pop("writing", None)
    # Popped either way: a Stop clicked just as an answer ended must not stop the next one.
    stop = st.session_state.pop("stop_requested", False)
    if writing is None:
        return None
    item = {k: writing[k] for k in ("chat", "question", "regenerate") if k in writing}
    if not stop:
        # Interrupted by another click (a new question, a setting): ask it again first.
        st.session_state.setdefault("queue", []).insert(0, item)
        return None
    if item.get("regenerate"):
        return None  # the answer being replaced stays
    return item["chat"], Turn(
        writing["question"],
        writing["text"],
        False,
        [Source(**s) for s in writing["sources"]],
        [],
        time.time() - writing["started"],
        writing["mode"],
        stopped=True,
    )


def draft_markdown(text: str) -> str:
    """The decoder's unchecked words as they come: greyed and italic, so they read as
    provisional (they are replaced by the checked answer, which may differ)."""
    return f":gray[*{escape_markdown(text.strip())}*]{CURSOR}"


def render_draft(placeholder: Any, text: str) -> None:
    with placeholder.container():
        st.caption(DRAFT_CAPTION)
        st.markdown(draft_markdown(text))


def _stop_clicked() -> None:
    st.session_state["stop_requested"] = True


def ask(
    chain: RagChain,
    item: dict[str, str],
    turns: Sequence[Turn],
    options: AnswerOptions,
    hit_budget: Callable[[], bool] | None = None,
) -> Turn:
    """Stream the answer to a queued question (``item``) into the page; the finished turn
    (with ``error`` set when it failed). ``hit_budget`` says whether the decoder's reply used its
    whole token budget (the user is then told the answer was cut)."""
    from rag.answer.chain import Done, Draft, Retrieved, Token

    question = item["question"]
    # Before any Streamlit call (where a click can interrupt the run): from here on the
    # question is either in "writing" or saved, never in neither.
    writing: dict[str, Any] = {
        **item, "text": "", "sources": [], "started": time.time(), "mode": options.mode,
    }  # fmt: skip
    st.session_state["writing"] = writing
    with st.chat_message("user"):
        st.markdown(escape_markdown(question))
    with st.chat_message("assistant"):
        placeholder = st.empty()
        stop_slot = st.empty()
        stop_slot.button("Stop", icon=":material/stop_circle:", key="stop", on_click=_stop_clicked)
        placeholder.caption("Searching your documents…")
        text = ""
        draft = ""  # the decoder's words so far, unchecked: shown, never saved
        sources: list[Source] = []
        abstained = False
        answer: Answer | None = None
        t0 = time.perf_counter()
        history = history_pairs(turns)
        events = chain.stream(question, history, k=options.k, mode=options.mode, params=options.params)
        try:
            for event in events:
                if isinstance(event, Retrieved):
                    sources, abstained = list(event.sources), event.abstained
                    writing["sources"] = [vars(s) for s in sources]
                    placeholder.caption(
                        "No passage is close enough to answer from…"
                        if abstained
                        else f"Read {len(sources)} passages, writing the answer…"
                    )
                elif isinstance(event, Draft):
                    draft += event.text
                    if draft.strip() and not text:
                        render_draft(placeholder, draft)
                elif isinstance(event, Token):
                    text += event.text
                    writing["text"] = text
                    placeholder.markdown(answer_markdown(text) + CURSOR)
                elif isinstance(event, Done):
                    answer = event.answer
        except Exception as e:
            # The page edge: whatever went wrong below, the user gets one readable line
            # and the server log gets the traceback.
            log.exception("answering %r failed", question)
            failed = Turn(question, "", False, sources, [], time.perf_counter() - t0, options.mode,
                          error=f"Could not answer: {error_text(e)}")  # fmt: skip
            stop_slot.empty()
            placeholder.error(escape_markdown(failed.error), icon=":material/error:")
            st.session_state.pop("writing", None)
            return failed
        finally:
            # Also when Streamlit interrupts the run (Stop, a new click): closing the chain's
            # stream stops the decoder, which would otherwise keep writing for nobody.
            close = getattr(events, "close", None)
            if close is not None:
                close()
        stop_slot.empty()
        seconds = time.perf_counter() - t0
        if answer is not None:
            turn = Turn(
                question, answer.text, answer.abstained, list(answer.sources) or sources,
                list(answer.cited), seconds, options.mode, list(answer.evidence), answer.method,
                timings=dict(answer.timings),
            )  # fmt: skip
            turn.truncated = hit_budget is not None and answer.method == "generated" and hit_budget()
            turn.overruled = answer.overruled if answer.method == "extracted" else ""
        else:
            turn = Turn(question, text, abstained, sources, [], seconds, options.mode)
        with placeholder.container():
            render_answer_text(turn, "new")
    # Last: the caller saves the turn with no Streamlit call in between.
    st.session_state.pop("writing", None)
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
