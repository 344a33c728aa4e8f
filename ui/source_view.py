"""The sources under an answer, and what opening one shows (page image or text in context).

Scores are shown as a plain relevance indicator (relative to the best passage of the
answer: rank-fusion, cosine and BM25 scores mean nothing to a reader and are not on one
scale); the raw score is in the indicator's tooltip.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import streamlit as st
from PIL import Image

from rag.types import Source
from ui.chat_store import Turn
from ui.highlight import escape_markdown, passage_markdown, support_words
from ui.preview import PreviewError, document_path, document_text, evidence_text, pdf_page_image, text_context

# What Source.score is in each retrieval mode: the ranking score, not a probability.
SCORE_NAME = {"hybrid": "rank fusion", "dense": "cosine similarity", "bm25": "BM25"}


def relevance(score: float, best: float, mode: str, rrf_k: int) -> str:
    """Five dots. Hybrid: the share of the highest rank-fusion score there is (ranked first
    by both searches), so "both agree" reads as full and "one of them" as half. Otherwise
    (cosine, BM25): the share of the best passage's score."""
    ceiling = 2 / (rrf_k + 1) if mode == "hybrid" else best
    share = score / ceiling if ceiling > 0 else 0.0
    filled = max(1, min(5, int(share * 5 + 0.5)))  # half up: round() would make 2.5 two dots
    return "●" * filled + "○" * (5 - filled)


def source_anchor(key: str, n: int) -> str:
    return f"src-{key}-{n}"


def source_heading(s: Source, cited: bool, dots: str) -> str:
    page = f" · page {s.page}" if s.page is not None else ""
    if s.page is not None and s.heading:
        page += f" · {escape_markdown(s.heading)}"
    mark = " · :green-badge[cited]" if cited else ""
    return f"**\\[{s.n}\\] {escape_markdown(s.source)}**{page} · relevance {dots}{mark}"


def score_help(s: Source, mode: str) -> str:
    kind = SCORE_NAME.get(mode, "ranking score")
    if mode == "hybrid":
        how = ("Full dots: both searches (meaning and keywords) ranked it first, or it is "
               "a financial statement page the question needs.")
    else:
        how = "The dots compare it with the best passage of this answer."
    return f"Raw score {s.score:.4g} ({kind}). {how}"


def evidence_of(turn: Turn, s: Source) -> tuple[str, ...]:
    """The sentences (or table rows) of the answer's evidence quoted from source ``s``."""
    if turn.abstained or s.n not in turn.cited:
        return ()
    where = s.source if s.page is None else f"{s.source}, page {s.page}"
    return tuple(evidence_text(q) for q in turn.evidence if q.startswith(f'{where}: "'))


#: Narrowest the page image is drawn: on a 390 px phone the whole page shrunk to the screen
#: was unreadable; below this width it scrolls sideways instead.
READABLE_PAGE_PX = 900


def page_html(image: Image.Image, alt: str) -> str:
    """The page image, full width, but never narrower than READABLE_PAGE_PX (then scrolled)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<div style="overflow-x:auto"><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
            f'style="display:block;width:100%;min-width:{READABLE_PAGE_PX}px"></div>')  # fmt: skip


@st.dialog("Source", width="large")
def open_source(documents_dir: str, s: Source, words: frozenset[str], evidence: tuple[str, ...] = ()) -> None:
    """The cited page as an image with the answer's sentence or row marked (else the
    passage), or the passage in its text."""
    where = f", page {s.page}" if s.page is not None else ""
    st.markdown(f"**\\[{s.n}\\] {escape_markdown(s.source)}**{escape_markdown(where)}")
    try:
        path = document_path(Path(documents_dir), s.source)
        if s.page is not None and path.suffix.lower() == ".pdf":
            shown = pdf_page_image(path, s.page, s.text, set(words), evidence=evidence)
            if shown.evidence_found:
                st.caption("The sentence the answer rests on is marked.")
            elif not shown.found:
                st.caption("The passage could not be located on the page.")
            st.html(page_html(shown.image, f"{s.source}, page {s.page}"))
            return
        ctx = text_context(document_text(path), s.text, s.start, s.end)
    except PreviewError as e:
        st.error(escape_markdown(str(e)), icon=":material/error:")
        return
    parts = [passage_markdown(ctx.before), "---", passage_markdown(ctx.passage, words), "---",
             passage_markdown(ctx.after)]
    with st.container(height=480):
        st.caption("The passage is between the lines.")
        st.markdown("\n\n".join(p for p in parts if p))


def render_citations(turn: Turn, key: str, documents_dir: Path) -> None:
    """One button per cited source, right under the answer (visible even when the sources
    list is folded): it opens the page or the passage in its document."""
    cited = [s for s in turn.sources if s.n in turn.cited] if not turn.abstained else []
    if not cited:
        return
    words = frozenset(support_words(turn.answer, turn.question))
    row = st.container(horizontal=True)
    for s in cited:
        page = f" · page {s.page}" if s.page is not None else ""
        label = f"\\[{s.n}\\] {escape_markdown(s.source)}{page}"
        if row.button(label, key=f"cite_{key}_{s.n}", icon=":material/description:", type="tertiary",
                      help="Open the cited page with the passage marked"):  # fmt: skip
            open_source(str(documents_dir), s, words, evidence_of(turn, s))


def render_sources(turn: Turn, key: str, documents_dir: Path, rrf_k: int, *, expanded: bool) -> None:
    if not turn.sources:
        return
    title = "Nearest passages" if turn.abstained else f"Sources ({len(turn.sources)})"
    best = max(s.score for s in turn.sources)
    # Only the passages the answer cites are marked, and only with the answer's own words.
    words = frozenset() if turn.abstained else frozenset(support_words(turn.answer, turn.question))
    with st.expander(title, expanded=expanded):
        for s in turn.sources:
            cited = s.n in turn.cited and not turn.abstained
            with st.container(border=True):
                st.html(f'<span id="{source_anchor(key, s.n)}"></span>')
                dots = relevance(s.score, best, turn.mode, rrf_k)
                st.markdown(source_heading(s, cited, dots), help=score_help(s, turn.mode))
                st.markdown(passage_markdown(s.text, words if cited else frozenset()))
                label = "Open the page" if s.page is not None else "Show in the document"
                if st.button(label, key=f"open_{key}_{s.n}", icon=":material/open_in_new:"):
                    open_source(str(documents_dir), s, words if cited else frozenset(), evidence_of(turn, s))
