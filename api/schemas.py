"""Request and response bodies: OpenAI's chat shapes plus ours, all shown at /docs.

Chat requests accept (and ignore) OpenAI fields we have no use for (``user``, ``seed``,
penalties...), so existing clients work unchanged; fields we do read are validated and a
bad one is named in the 400 answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.settings import RetrieverMode
from rag.types import Source

# --- chat (OpenAI-compatible) ----------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


#: Characters one chat message may carry, as a search query: a question or a turn of the
#: conversation, not a document (those are uploaded). Far beyond it the reader's window
#: has no room left for the passages.
MAX_MESSAGE_CHARS = 4000
#: Turns one chat request may carry (only the last few shape the search query).
MAX_MESSAGES = 100


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None

    @field_validator("content")
    @classmethod
    def _bounded(cls, value: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        size = sum(len(p.text or "") for p in value) if isinstance(value, list) else len(value or "")
        if size > MAX_MESSAGE_CHARS:
            raise ValueError(f"{size} characters, at most {MAX_MESSAGE_CHARS}: ask a shorter "
                             "question (documents go to POST /v1/collections/NAME/documents)")
        return value


class ChatRequest(BaseModel):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{
            "model": "sample",
            "messages": [{"role": "user", "content": "When was the tower built?"}],
            "stream": False,
        }]},
    )
    model: str = Field(description="The collection to answer from (see GET /v1/models).")
    messages: list[ChatMessage] = Field(
        min_length=1, max_length=MAX_MESSAGES,
        description="The conversation; the last message is the user's question, earlier turns "
        "make it a follow-up.")
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2, description="0 = greedy; unset = RAG_DO_SAMPLE.")
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=1, description="Only one choice per request.")
    # docchat extensions (OpenAI clients send them with extra_body):
    k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default RAG_K).")
    retriever: RetrieverMode | None = Field(None, description="Retrieval mode (default RAG_RETRIEVER).")


class SourceOut(BaseModel):
    n: int = Field(description="The number the answer cites as [n].")
    source: str = Field(description="Document path inside the collection.")
    page: int | None = Field(description="1-based PDF page; null for single-page formats.")
    score: float = Field(description="Ranking score (rank fusion, cosine or BM25 by mode).")
    text: str
    chunk_id: str
    start: int = Field(description="Character offset of the passage in its page text.")
    end: int
    heading: str = Field("", description="The page's heading (a PDF page's first lines, e.g. "
                         "\"Consolidated Statements of Cash Flows\"); empty if none.")

    @classmethod
    def of(cls, s: Source) -> SourceOut:
        return cls(n=s.n, source=s.source, page=s.page, score=s.score, text=s.text,
                   chunk_id=s.chunk_id, start=s.start, end=s.end, heading=s.heading)


class Grounding(BaseModel):
    """The extra field OpenAI clients ignore: where the answer came from."""

    answer: str = Field(description="The final answer text (authoritative when streaming).")
    abstained: bool = Field(description="True when the documents do not answer the question.")
    sources: list[SourceOut]
    cited: list[int] = Field(description="n of the sources the answer cites.")
    search_query: str = Field(description="What was searched (a follow-up includes the previous question).")
    timings: dict[str, float] = Field(default_factory=dict)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    docchat: Grounding


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "docchat"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- search ----------------------------------------------------------------------------


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: str
    query: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    k: int | None = Field(None, ge=1, le=50, description="Passages to return (default RAG_K).")
    mode: RetrieverMode | None = Field(None, description="Retrieval mode (default RAG_RETRIEVER).")


class Passage(BaseModel):
    rank: int
    source: str
    page: int | None
    score: float = Field(description="Ranking score in this mode.")
    dense_score: float | None = Field(description="Cosine of query and passage.")
    bm25_score: float | None
    text: str
    chunk_id: str
    start: int
    end: int
    heading: str = Field("", description="The page's heading; empty if none.")


class SearchResponse(BaseModel):
    collection: str
    query: str
    mode: str
    passages: list[Passage]


# --- collections, documents, jobs ------------------------------------------------------


class CreateCollection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-48 letters, digits, '-' or '_', starting with a letter or digit.")


class JobOut(BaseModel):
    id: str
    collection: str
    label: str
    state: Literal["queued", "running", "succeeded", "failed"] = Field(
        description="'queued': waits for the collection's running job, then reads every file "
        "uploaded meanwhile.")
    stage: str
    progress: float = Field(description="0..1")
    elapsed_s: float
    error: str | None
    summary: dict[str, Any] | None = Field(description="Ingestion summary once finished.")


class CollectionOut(BaseModel):
    name: str
    indexed: bool
    documents: int = Field(description="Documents in the index.")
    passages: int
    job: JobOut | None


class DocumentOut(BaseModel):
    name: str
    status: Literal["ready", "processing", "waiting", "not added"]
    reason: str
    pages: int | None
    passages: int | None
    added_at: str


class UploadResult(BaseModel):
    filename: str
    outcome: Literal["saved", "duplicate", "rejected"]
    message: str
    document: str | None = Field(description="Its name in the collection (saved or already there).")


class UploadResponse(BaseModel):
    results: list[UploadResult]
    job: JobOut | None = Field(description="The ingestion started (or queued) for the saved "
                               "files, if any.")


class JobResponse(BaseModel):
    job: JobOut
    queued: JobOut | None = Field(None, description="The follow-up job waiting for this one.")
