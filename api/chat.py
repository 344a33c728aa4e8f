"""``/v1/chat/completions``, ``/v1/models`` and ``/v1/search``: the chain over HTTP.

A collection is a "model", so OpenAI clients and chat front ends pick one from their model
list. The answer text carries [n] citations as in the app; the passages behind them (and
whether the documents answered at all) travel in the extra ``docchat`` field.

Streaming: the chain runs in a worker thread (the models block) and hands its events to
the event loop through a queue. The sources are known before the first token, so they go
out in the first chunk; the final chunk repeats them with the citations. If the chain
withdraws a streamed reply at the end (the model said it does not know, or its words are
not in the passages), the withdrawal text follows what was streamed, as in ``rag ask``;
``docchat.answer`` is the final text either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, error_body
from api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatMessage,
    ChatRequest,
    Choice,
    Grounding,
    ModelCard,
    ModelList,
    Passage,
    SearchRequest,
    SearchResponse,
    SourceOut,
)
from api.service import NotIndexedError, Service
from ingest.collection import CollectionNameError, list_collections
from rag.answer.steps import to_sources
from rag.types import Answer, DecodingParams

if TYPE_CHECKING:
    from rag.answer.chain import ChainEvent, RagChain

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["chat (OpenAI-compatible)"])


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


# --- request -> chain arguments ----------------------------------------------------------


def _text(m: ChatMessage, i: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    parts = []
    for j, part in enumerate(m.content):
        if part.type != "text" or part.text is None:
            raise ApiError(400, f"messages[{i}].content[{j}]: only text parts are supported, "
                           f"got type {part.type!r}", param=f"messages[{i}].content[{j}]")
        parts.append(part.text)
    return "\n".join(parts)


def conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The question (last user message) and the earlier (question, answer) turns.

    System messages are ignored: the prompt is tuned for the small reader, and a client's
    own system prompt would undo that.
    """
    turns = [(i, m.role, _text(m, i)) for i, m in enumerate(messages) if m.role in ("user", "assistant")]
    if not turns or turns[-1][1] != "user":
        raise ApiError(400, "messages: the last message must be the user's question",
                       param="messages")
    i, _, question = turns[-1]
    if not question.strip():
        raise ApiError(400, f"messages[{i}].content: the question is empty", param=f"messages[{i}].content")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for _, role, text in turns[:-1]:
        if role == "user":
            pending = text
        elif pending is not None:
            history.append((pending, text))
            pending = None
    return question, history


def decoding(req: ChatRequest, base: DecodingParams) -> DecodingParams:
    params = base
    limit = req.max_completion_tokens or req.max_tokens
    if limit is not None:
        params = dataclasses.replace(params, max_new_tokens=limit)
    if req.temperature is not None:
        params = (dataclasses.replace(params, do_sample=False) if req.temperature == 0
                  else dataclasses.replace(params, do_sample=True, temperature=req.temperature))
    if req.top_p is not None:
        params = dataclasses.replace(params, top_p=req.top_p)
    return params


async def open_chain(service: Service, name: str, param: str) -> RagChain:
    try:
        return await run_in_threadpool(service.chain, name)
    except CollectionNameError as e:
        raise ApiError(400, str(e), param=param) from e
    except FileNotFoundError as e:
        raise ApiError(404, f"{e}; list them with GET /v1/models", param=param) from e
    except NotIndexedError as e:
        raise ApiError(409, str(e), param=param) from e


def admit(service: Service) -> None:
    if not service.admission.try_enter():
        raise ApiError(
            429,
            f"the server is busy: {service.admission.limit} requests are already being answered or "
            "waiting (RAG_API_MAX_QUEUE); retry shortly",
            headers={"Retry-After": "1"},
        )


def grounding(answer: Answer, search_query: str) -> Grounding:
    return Grounding(
        answer=answer.text, abstained=answer.abstained,
        sources=[SourceOut.of(s) for s in answer.sources], cited=list(answer.cited),
        search_query=search_query, timings={k: round(v, 4) for k, v in answer.timings.items()},
    )


# --- routes --------------------------------------------------------------------------------


@router.get("/models", response_model=ModelList, summary="Collections that can answer, as models")
def models(request: Request) -> ModelList:
    from rag.store.backends import store_exists

    settings = service_of(request).settings
    cards = []
    for name in list_collections(settings):
        index_dir = settings.index_path(name)
        if store_exists(settings, index_dir):
            current = index_dir / "CURRENT"  # FAISS store; a Milvus index has no local file
            created = int((current if current.exists() else index_dir).stat().st_mtime)
            cards.append(ModelCard(id=name, created=created))
    return ModelList(data=cards)


@router.get("/models/{model}", response_model=ModelCard, summary="One collection, as a model")
def model(model: str, request: Request) -> ModelCard:
    for card in models(request).data:
        if card.id == model:
            return card
    raise ApiError(404, f"no collection named {model!r} with an index; list them with GET /v1/models",
                   param="model")


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="Answer from a collection (OpenAI chat completions; stream=true for server-sent events)",
    responses={429: {"description": "Too many requests in the server; retry after the Retry-After seconds."}},
)
async def chat_completions(req: ChatRequest, request: Request) -> Any:
    service = service_of(request)
    question, history = conversation(req.messages)
    chain = await open_chain(service, req.model, "model")
    params = decoding(req, chain.params)
    args: dict[str, Any] = {"k": req.k, "mode": req.retriever, "params": params}
    admit(service)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if req.stream:
        events = _start_stream(service, chain, question, history, args)
        return StreamingResponse(
            _sse(events, completion_id, created, req.model),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def answer() -> tuple[Answer, str]:
        from rag.answer.chain import Done, Retrieved

        try:
            query, final = question, None
            for event in chain.stream(question, history, **args):
                if isinstance(event, Retrieved):
                    query = event.search_query
                elif isinstance(event, Done):
                    final = event.answer
            assert final is not None  # the chain always ends with Done
            return final, query
        finally:
            service.admission.leave()

    try:
        final, query = await run_in_threadpool(answer)
    except ValueError as e:
        raise ApiError(400, f"messages: {e}", param="messages") from e
    return ChatCompletion(
        id=completion_id, created=created, model=req.model,
        choices=[Choice(message=AssistantMessage(content=final.text))],
        docchat=grounding(final, query),
    )


@router.post("/search", response_model=SearchResponse, tags=["search"],
             summary="Retrieval only: the passages a question finds, with source, page and scores")
async def search(req: SearchRequest, request: Request) -> SearchResponse:
    service = service_of(request)
    chain = await open_chain(service, req.collection, "collection")
    mode = req.mode or service.settings.retriever
    k = req.k or service.settings.k
    admit(service)

    def run() -> list[Any]:
        try:
            retriever: Any = chain.retriever
            if callable(getattr(retriever, "search", None)):
                return list(retriever.search(req.query, k=k, mode=mode))
            return list(retriever.invoke(req.query))[:k]
        finally:
            service.admission.leave()

    docs = await run_in_threadpool(run)
    # The passages as the chain numbers and cites them (rag.answer.steps.to_sources), with
    # the two scores the ranking fused.
    passages = [
        Passage(rank=s.n, source=s.source, page=s.page, score=s.score,
                dense_score=_score(d, "dense_score"), bm25_score=_score(d, "bm25_score"),
                text=s.text, chunk_id=s.chunk_id, start=s.start, end=s.end, heading=s.heading)
        for s, d in zip(to_sources(docs), docs, strict=True)
    ]
    return SearchResponse(collection=req.collection, query=req.query, mode=mode, passages=passages)


def _score(doc: Any, key: str) -> float | None:
    value = doc.metadata.get(key)
    return None if value is None else float(value)


# --- streaming -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Failure:
    message: str


_END = object()


@dataclasses.dataclass
class _Stream:
    queue: asyncio.Queue[Any]
    stop: threading.Event


def _start_stream(service: Service, chain: RagChain, question: str,
                  history: list[tuple[str, str]], args: dict[str, Any]) -> _Stream:
    """Run the chain in a thread now (it holds an admission slot until it ends)."""
    loop = asyncio.get_running_loop()
    stream = _Stream(asyncio.Queue(), threading.Event())

    def put(item: object) -> None:
        # RuntimeError: the event loop is gone (server shutting down): nobody to tell.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stream.queue.put_nowait, item)

    def produce() -> None:
        events = chain.stream(question, history, **args)
        try:
            for event in events:
                put(event)
                if stream.stop.is_set():
                    break  # the client left: closing the chain stops generation
        except Exception as e:
            # The thread boundary: the client gets one line, the log the traceback.
            log.exception("streaming an answer to %r failed", question)
            put(_Failure(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__))
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # stops the decoder if we left early
            service.admission.leave()
            put(_END)

    threading.Thread(target=produce, name="api-stream", daemon=True).start()
    return stream


def _chunk(cid: str, created: int, model: str, delta: dict[str, str], finish: str | None = None,
           extra: Grounding | None = None) -> str:
    body: dict[str, Any] = {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra is not None:
        body["docchat"] = extra.model_dump()
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


async def _sse(stream: _Stream, cid: str, created: int, model: str) -> AsyncIterator[str]:
    from rag.answer.chain import Done, Retrieved, Token

    streamed = ""
    query = ""
    try:
        while True:
            event: ChainEvent | _Failure | object = await stream.queue.get()
            if event is _END:
                break
            if isinstance(event, _Failure):
                yield f"data: {json.dumps(error_body(500, 'could not answer: ' + event.message))}\n\n"
                break
            if isinstance(event, Retrieved):
                query = event.search_query
                first = Grounding(answer="", abstained=event.abstained,
                                  sources=[SourceOut.of(s) for s in event.sources], cited=[],
                                  search_query=query)
                yield _chunk(cid, created, model, {"role": "assistant", "content": ""}, extra=first)
            elif isinstance(event, Token):
                streamed += event.text
                yield _chunk(cid, created, model, {"content": event.text})
            elif isinstance(event, Done):
                tail = _tail(streamed, event.answer.text)
                if tail:
                    yield _chunk(cid, created, model, {"content": tail})
                yield _chunk(cid, created, model, {}, "stop", grounding(event.answer, query))
        yield "data: [DONE]\n\n"
    finally:
        stream.stop.set()


def _tail(streamed: str, final: str) -> str:
    """What to send after the streamed text so that it reads as the final answer."""
    shown = streamed.strip()
    if final.startswith(shown):
        return final[len(shown):]
    return ("\n\n" if shown else "") + final
