"""Answers built from a whole document: a summary, a list of everything of one kind.

"Summarize the document about the steam engine" cannot be answered from the four passages
nearest the question: a summary must cover the document. The route takes the document
the question is about (named in it, else the best retrieved passage's), reads all its
chunks from the store, and builds the answer extractively, map-reduce style: the document
is cut into consecutive sections, each section's most central sentence is chosen (map),
and the choices are put in document order and cited (reduce). Nothing is generated, so
nothing can be invented; every sentence is the document's own, with its file and page.

"List all the countries" is answered from the document's tables when a column holds that
kind of item (each value cited to its row), else with the sentences that mention it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Protocol

from rag.answer.figures import years_in
from rag.answer.kinds import question_kind
from rag.answer.lookup import CELL_SEP
from rag.answer.routes import RouteContext, named_documents
from rag.text import content_stems, sentence_spans, singular
from rag.types import Answer, Chunk, Source

SUMMARY_SENTENCES = 6
_FULL_WORDS = 10  # content words from which a sentence counts as saying something whole
LIST_LIMIT = 25
MAX_DOCUMENTS = 3  # retrieved documents a list question looks for a table in
SEARCH_K = 20  # passages searched to find those documents
_MIN_WORDS, _MAX_WORDS = 6, 60
# The question's words that only say "summarize this document": not what it is about.
_ASKING = frozenset({"summarize", "summarise", "summary", "overview", "document", "documents", "file",
                     "text", "give", "write", "short", "brief", "main", "point", "points", "list",
                     "all", "mentioned", "named", "name", "every", "enumerate", "please", "key",
                     "about", "provide", "describe", "outline", "report", "paper", "article"})
_TARGET = re.compile(r"^\s*(?:list|enumerate|name)\s+(?:all\s+|every\s+|each\s+)?(?:of\s+)?(?:the\s+)?"
                     r"((?:[\w-]+\s+){0,2}?[\w-]+s)\b"
                     r"|\bwhat\s+are\s+(?:all\s+)?(?:the\s+)?((?:[\w-]+\s+){0,2}?[\w-]+s)\b"
                     r"|^\s*which\s+([\w-]+s)\s+(?:are|were)\b", re.IGNORECASE)


class _Named(Protocol):
    @property
    def source(self) -> str: ...


class DocumentStore(Protocol):
    """What the route needs of the index (rag.store's readers have it)."""

    def files(self) -> Sequence[_Named]: ...

    def document_chunks(self, source: str) -> list[Chunk]: ...


@dataclass(frozen=True)
class _Sentence:
    chunk: Chunk
    start: int  # in chunk.text
    end: int
    order: int  # position in the document

    @property
    def text(self) -> str:
        return self.chunk.text[self.start:self.end]


class DocumentRoute:
    """Answers ``summary`` and ``list`` questions from the whole document; None else."""

    def __init__(self, store: DocumentStore, sentences: int = SUMMARY_SENTENCES) -> None:
        self.store = store
        self.sentences = sentences

    def __call__(self, ctx: RouteContext) -> Answer | None:
        kind = question_kind(ctx.question)
        if kind not in ("summary", "list"):
            return None
        candidates = self._documents(ctx)
        if kind == "list":
            # The first candidate with a table column of the item, else the first's sentences.
            for source in candidates:
                answer = listed(ctx.question, source, self.store.document_chunks(source), tables_only=True)
                if answer is not None:
                    return answer
            return listed(ctx.question, candidates[0], self.store.document_chunks(candidates[0])) \
                if candidates else None
        chunks = self.store.document_chunks(candidates[0]) if candidates else []
        return summary(ctx.question, candidates[0], chunks, self.sentences) if chunks else None

    def _documents(self, ctx: RouteContext) -> list[str]:
        """The document the question names (its file name's words); else the documents of
        the retrieved passages, best first (a single document's collection: that one)."""
        names = [f.source for f in self.store.files()]
        named = named_documents(ctx.question, names, years_in(ctx.question))
        if named:
            return named[:1]
        if len(names) == 1:
            return names
        # Further than the top k: a list's table may rank below prose that names the item.
        found = [str(d.metadata.get("source", "")) for d in ctx.search(ctx.question, SEARCH_K)]
        return list(dict.fromkeys([s.source for s in ctx.sources[:1]] + found))[:MAX_DOCUMENTS]


def _sentences(chunks: Sequence[Chunk]) -> list[_Sentence]:
    """The document's prose sentences, once each (chunks overlap), in reading order."""
    seen: set[str] = set()
    out: list[_Sentence] = []
    for chunk in chunks:
        for a, b in sentence_spans(chunk.text):
            text = chunk.text[a:b]
            n = len(text.split())
            key = " ".join(text.lower().split())
            if CELL_SEP in text or not (_MIN_WORDS <= n <= _MAX_WORDS) or key in seen:
                continue
            if not text.rstrip().endswith((".", "!", "?", '"', ")")) or text[:1].islower():
                continue  # a heading, a caption or a sentence cut by the chunk's edge
            seen.add(key)
            out.append(_Sentence(chunk, a, b, len(out)))
    return out


def _focus(question: str, source: str) -> set[str]:
    """What the question asks to summarise beyond "the document" (and its name): "the risks"."""
    named = content_stems(PurePosixPath(source).stem.replace("_", " "))
    return {w for w in content_stems(question) if w not in _ASKING and w not in named}


def summary(question: str, source: str, chunks: Sequence[Chunk],
            size: int = SUMMARY_SENTENCES) -> Answer | None:
    sentences = _sentences(chunks)
    if not sentences:
        return None
    stems = [content_stems(s.text) for s in sentences]
    freq = Counter(w for ws in stems for w in ws)
    focus = _focus(question, source)

    def score(i: int) -> float:
        ws = stems[i]
        if not ws:
            return 0.0
        # Central: made of the document's frequent words (log-damped, per word), and not
        # too short to say something (a long sentence is not more central for its length).
        central = sum(math.log1p(freq[w]) for w in ws) / len(ws) * min(1.0, len(ws) / _FULL_WORDS)
        on_topic = 1.0 + len(ws & focus) if focus else 1.0
        return central * on_topic

    # Map: the best sentence of each of ``size`` consecutive sections (so the summary covers
    # the whole document, not its densest page); with a focus, the best over the document.
    n = min(size, len(sentences))
    if focus:
        # Sentences on the focus only ("the risks"), when there are any.
        on_focus = [i for i in range(len(sentences)) if stems[i] & focus] or list(range(len(sentences)))
        ranked = sorted(on_focus, key=score, reverse=True)
        chosen = sorted(_diverse(ranked, stems, n))
    else:
        bounds = [round(i * len(sentences) / n) for i in range(n + 1)]
        chosen = [max(range(bounds[i], bounds[i + 1]), key=score)
                  for i in range(n) if bounds[i] < bounds[i + 1]]
    picked = [sentences[i] for i in chosen]
    # Reduce: in document order, each cited.
    sources, numbers = _numbered(picked)
    lines = [f"{s.text.strip()} [{numbers[s.chunk.id]}]" for s in picked]
    head = (f"Summary of {source} ({len(picked)} sentences chosen from {len(sentences)}, "
            "in the document's order):")
    evidence = [_quote(s) for s in picked]
    return Answer(head + "\n\n" + " ".join(lines), False, sources, sorted(set(numbers.values())),
                  evidence=evidence, method="summary")


def _diverse(ranked: Sequence[int], stems: Sequence[set[str]], n: int) -> list[int]:
    """The first ``n`` of ``ranked`` that do not repeat a chosen one (half its words)."""
    out: list[int] = []
    for i in ranked:
        if all(len(stems[i] & stems[j]) <= 0.5 * min(len(stems[i]), len(stems[j])) for j in out):
            out.append(i)
        if len(out) == n:
            break
    return out


def _target(question: str) -> tuple[str, str]:
    """The kind of item asked for, singular and as asked: ("country", "countries")."""
    m = _TARGET.search(question)
    if m is None:
        return "", ""
    words = next(g for g in m.groups() if g).lower().split()
    return singular(words[-1]), words[-1]


def listed(question: str, source: str, chunks: Sequence[Chunk], *,
           tables_only: bool = False) -> Answer | None:
    target, plural = _target(question)
    if not target:
        return None
    items = _table_items(target, chunks)
    if not items and not tables_only:
        items = _sentence_items(target, chunks)
    if not items:
        return None
    items = items[:LIST_LIMIT]
    sources, numbers = _numbered([s for _, s in items])
    lines = [f"- {text} [{numbers[s.chunk.id]}]" for text, s in items]
    head = f"The {plural} in {source} ({len(items)}):" if len(items) > 1 else f"In {source}:"
    evidence = list(dict.fromkeys(_quote(s) for _, s in items))
    return Answer(head + "\n" + "\n".join(lines), False, sources, sorted(set(numbers.values())),
                  evidence=evidence, method="list")


def _table_items(target: str, chunks: Sequence[Chunk]) -> list[tuple[str, _Sentence]]:
    """The values of a table column headed by the target ("Country"): a header line's first
    cell, whose rows follow it with their labels first."""
    out: list[tuple[str, _Sentence]] = []
    seen: set[str] = set()
    header_first = False  # carried from chunk to chunk: a table's rows run on without it
    page: int | None = None
    for chunk in chunks:
        if chunk.page != page:
            header_first, page = False, chunk.page
        pos = 0
        for line in chunk.text.split("\n"):
            start, pos = pos, pos + len(line) + 1
            cells = [c.strip() for c in line.split(CELL_SEP)]
            if len(cells) < 2:
                # Prose ends the table; a page number or a blank line does not.
                header_first = header_first and not any(ch.isalpha() for ch in line)
                continue
            if ":" not in line and singular(cells[0].lower().split()[-1] if cells[0] else "") == target:
                header_first = True  # "Country | Population (millions) | Capital"
                continue
            # A row's first cell is its label; one holding ": " or no letter is a row cut by
            # the chunk's start ("5.8 | Area (km2): ...").
            label = cells[0]
            if (header_first and any(ch.isalpha() for ch in label) and ": " not in label
                    and label.lower() not in seen):
                seen.add(label.lower())
                out.append((label, _Sentence(chunk, start, start + len(line), len(out))))
    return out


def _sentence_items(target: str, chunks: Sequence[Chunk]) -> list[tuple[str, _Sentence]]:
    """The sentences that mention the target, each one item."""
    out: list[tuple[str, _Sentence]] = []
    for s in _sentences(chunks):
        if target in content_stems(s.text) or target + "s" in s.text.lower():
            out.append((s.text.strip(), s))
    return out


def _numbered(picked: Sequence[_Sentence]) -> tuple[list[Source], dict[str, int]]:
    """The chunks behind the picked sentences as numbered sources, in the order first used."""
    numbers: dict[str, int] = {}
    sources: list[Source] = []
    for s in picked:
        c = s.chunk
        if c.id in numbers:
            continue
        numbers[c.id] = len(sources) + 1
        sources.append(Source(len(sources) + 1, c.source, c.page, 0.0, c.text, c.id, c.start, c.end))
    return sources, numbers


def _quote(s: _Sentence) -> str:
    place = s.chunk.source if s.chunk.page is None else f"{s.chunk.source}, page {s.chunk.page}"
    return f'{place}: "{s.text.strip()}"'
