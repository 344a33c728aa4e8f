"""Value types and the protocols at the seams between stages.

LangChain's ``Document`` carries chunks across the retriever seam (so the chain composes
with the ecosystem); these dataclasses carry them everywhere else, typed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from langchain_core.documents import Document

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Chunk:
    """A piece of one document, small enough for the encoder to see whole."""

    source: str  # path relative to the corpus root, POSIX separators
    page: int | None  # 1-based page for PDFs, None for single-page formats
    start: int  # character offset of the chunk in its page (or document) text
    end: int
    text: str
    id: str = ""  # stable id; derived from the fields above when left empty
    # What the chunk's document and page are ("3M 2018 10K · fiscal year ended ... ·
    # Consolidated Statement of Cash Flows"): embedded and keyword-indexed with the text,
    # because a passage alone rarely says which filing or statement it comes from. Not
    # part of ``text`` (offsets and citations stay those of the page) nor of the id.
    header: str = ""

    @property
    def heading(self) -> str:
        """The page's heading ("Consolidated Statements of Cash Flows"); see heading_of."""
        return heading_of(self.header)

    @property
    def indexed_text(self) -> str:
        """What the encoder and BM25 see: header, then the passage."""
        return f"{self.header}\n{self.text}" if self.header else self.text

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", chunk_id(self.source, self.page, self.start, self.text))

    def to_document(self, **scores: float | None) -> Document:
        meta: dict[str, object] = {
            "id": self.id,
            "source": self.source,
            "page": self.page,
            "start": self.start,
            "end": self.end,
        }
        if self.header:
            meta["header"] = self.header
        meta.update(scores)
        return Document(page_content=self.text, metadata=meta, id=self.id)

    @staticmethod
    def from_document(doc: Document) -> Chunk:
        m = doc.metadata
        return Chunk(
            source=str(m["source"]),
            page=None if m.get("page") is None else int(m["page"]),
            start=int(m.get("start", 0)),
            end=int(m.get("end", len(doc.page_content))),
            text=doc.page_content,
            id=str(m.get("id", "")),
            header=str(m.get("header", "")),
        )


#: Between the parts of a header line (file name · title · period; company · statement).
HEADER_SEP = " · "


def heading_of(header: str) -> str:
    """The page heading in a chunk header: its second line; '' for a document without
    pages or a page without one. Documents carry the header as metadata ``header``."""
    return header.partition("\n")[2]


def chunk_id(source: str, page: int | None, start: int, text: str) -> str:
    """Same file content -> same ids, so re-ingesting unchanged files keeps citations stable."""
    h = hashlib.sha256(f"{source}\x00{page}\x00{start}\x00{text}".encode())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class Page:
    """Text of one page (PDF) or of a whole document (other formats, page=None)."""

    number: int | None
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    source: str  # relative to corpus root
    pages: list[Page]
    title: str = ""  # metadata title (PDF), "" when absent


@dataclass(frozen=True)
class Source:
    """A passage shown to the user and numbered in the prompt as [n]."""

    n: int
    source: str
    page: int | None
    score: float
    text: str
    chunk_id: str = ""
    start: int = 0
    end: int = 0
    heading: str = ""  # the page's heading (Chunk.heading), shown beside the page number


@dataclass
class Answer:
    text: str
    abstained: bool
    sources: list[Source]
    # n of the sources the answer text cites with [n] markers.
    cited: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    # The sentence(s) the answer rests on, quoted with their place:
    # 'multicolumn.pdf, page 3: "..."'. Empty for refusals.
    evidence: list[str] = field(default_factory=list)
    # How the text came about: "generated" (the decoder's reply, checked against its
    # passage), "extracted" (the reader's span: the decoder's reply could not be backed
    # up), or "abstained".
    method: str = "generated"
    # For "extracted": the decoder's own short answer when it named something else (a real
    # disagreement the page mentions); empty when it only failed to be backed up.
    overruled: str = ""


# --- protocols at the seams ------------------------------------------------------------


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into unit-length vectors; also the token counter the splitter uses."""

    # Read-only here, so an encoder that learns them lazily (rag.models.lazy_encoder) fits.
    @property
    def name(self) -> str: ...  # recorded in the index manifest

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...  # longest input (its own tokens, specials excluded) seen whole

    def embed(self, texts: Sequence[str]) -> FloatArray: ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character span of each token of ``text`` (special tokens excluded)."""
        ...


class Generator(Protocol):
    """A chat decoder that streams text."""

    name: str
    context_window: int

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]: ...


@runtime_checkable
class ReplyScorer(Protocol):
    """A decoder that can say how likely it finds given replies (the local one can; a
    remote server behind the chat-model interface cannot)."""

    def reply_log_probs(self, prompts: Sequence[Sequence[dict[str, str]]],
                        replies: Sequence[str]) -> list[float]: ...


@dataclass(frozen=True)
class DecodingParams:
    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.0


@dataclass(frozen=True)
class Span:
    """A candidate answer: characters [start, end) of passage ``passage``."""

    passage: int
    start: int
    end: int
    text: str
    score: float  # start + end logit
    null_score: float  # the window's "no answer" logit sum ([CLS] start + end)
    #: "" for the reader's spans; what a looked-up answer is ("cell", "toc", "title",
    #: "document": see rag.answer.lookup). A "document" span's text is the file name, not
    #: passage[start:end] (the sentence that shows what the document says).
    kind: str = ""

    @property
    def margin(self) -> float:
        """How much more the model believes this span than "no answer here"."""
        return self.score - self.null_score
