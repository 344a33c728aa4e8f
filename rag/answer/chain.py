"""The answering chain: rewrite follow-up -> retrieve -> abstain? -> read -> generate -> check.

It is a LangChain Runnable (``RagChain.runnable``, a RunnableGenerator with a sync and an
async path): ``stream`` / ``astream`` yield the chain's events (``Retrieved``, ``Token``...,
``Done``) and ``astream_events`` also shows the decoder's own tokens as they are written.
The decoder is a LangChain chat model (``rag.models.chat_model``), so any chat model can take its
place.

How an answer is made (measured in docs/benchmarks.md, "Answers"; steps in ``rag.answer.reading``):
1. The extractive reader (``rag.models.span_reader``) scores answer spans in the retrieved passages, with
   text that addresses a model blanked first (``rag.answer.verify.mask_injections``). No span it
   believes over "no answer here": the documents do not say, and the chain says so. A
   question naming a table row and column heading, a contents entry, a document's title or
   "which document" gets what it names looked up first (``rag.answer.lookup``); otherwise the local
   decoder votes on the reader's best spans (``rag.answer.span_scores``).
2. The decoder reads only the one or two sentences holding the best spans (a 135M model
   answers far better from a sentence than from four passages) and writes the reply.
3. The reply is shown only if every content word and number of it stands in the passage
   it cites and it states one of the reader's candidate answers; otherwise the user gets
   the reader's span, with the sentence it comes from quoted.

Follow-up questions: a 135M model cannot be trusted to rewrite "when was it built?" into a
standalone question, so the rewrite is deterministic: a short question, or one leaning on a
pronoun, is searched together with the previous user question.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator, RunnableLambda
from langchain_core.runnables.config import run_in_executor

from rag.answer.citations import cite, says_unknown, strip_markers
from rag.answer.lookup import is_lookup
from rag.answer.prompt import PromptStyle, build_prompt
from rag.answer.reading import read_sources
from rag.answer.routes import Route, RouteContext
from rag.answer.steps import messages_of, search_query, to_sources, weak_evidence
from rag.answer.verify import Evidence, agrees, competing, supported
from rag.models.chat_model import GeneratorChatModel, call_options
from rag.models.span_reader import SpanReader
from rag.settings import RetrieverMode
from rag.text import ends_sentence, trim_to_sentence
from rag.types import Answer, DecodingParams, Generator, ReplyScorer, Source, Span

#: What the user reads when the documents do not answer the question.
ABSTAIN_TEXT = "The documents do not contain an answer to this question."
UNGROUNDED_TEXT = (
    "I could not find an answer in the documents that I can back up. "
    "The closest passages are below."
)
#: The decoder's reply must state the reader's best span: allowing any of the best three let
#: the 135M decoder pick a wrong candidate (F1 20 alone, against the reader's 66).
AGREE_TOP = 1
#: Context window assumed for chat models that do not tell (remote servers).
DEFAULT_CONTEXT_WINDOW = 8192

@dataclass(frozen=True)
class Retrieved:
    sources: list[Source]
    abstained: bool
    search_query: str = ""


@dataclass(frozen=True)
class Token:
    text: str


@dataclass(frozen=True)
class Done:
    answer: Answer


ChainEvent = Retrieved | Token | Done


@dataclass
class _Plan:
    """Everything decided before the decoder runs."""

    question: str
    query: str
    shown: list[Source]
    timings: dict[str, float]
    t0: float
    answer: Answer | None = None  # decided without the decoder (refusal)
    messages: list[BaseMessage] = field(default_factory=list)
    prompt_sources: list[Source] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    read: list[str] = field(default_factory=list)  # what the decoder read of each evidence
    spans: list[Span] = field(default_factory=list)


@dataclass
class _Reply:
    pieces: list[str] = field(default_factory=list)
    stopped: bool = False  # ended at a line break (a complete one-line reply)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class RagChain:
    def __init__(
        self,
        retriever: BaseRetriever,
        llm: BaseChatModel | Generator,
        *,
        abstain_threshold: float,
        reader: SpanReader | None = None,
        reader_min_margin: float = 0.0,
        reader_min_support: float = 0.0,
        reader_confident_support: float = 0.0,
        reader_decoder_weight: float = 0.0,
        reader_overlap_weight: float = 0.0,
        params: DecodingParams | None = None,
        context_tokens: int | None = None,
        style: PromptStyle | None = None,
        stop_at_newline: bool = True,
        routes: Sequence[Route] = (),
    ) -> None:
        self.retriever = retriever
        # Tried in order before the reader; the first Answer wins (rag.answer.routes).
        self.routes = list(routes)
        self.llm: BaseChatModel = llm if isinstance(llm, BaseChatModel) else GeneratorChatModel(generator=llm)
        self.reader = reader
        self.abstain_threshold = abstain_threshold
        self.reader_min_margin = reader_min_margin
        self.reader_min_support = reader_min_support
        self.reader_confident_support = reader_confident_support
        self.reader_decoder_weight = reader_decoder_weight
        self.reader_overlap_weight = reader_overlap_weight
        self.params = params or DecodingParams()
        self.context_tokens = context_tokens
        self.style = style or PromptStyle()
        self.stop_at_newline = stop_at_newline
        # question + history -> rewritten query -> documents (retrieval alone, for callers
        # that only search).
        self.prepare: Runnable[dict[str, Any], list[Document]] = RunnableLambda(
            lambda inp: self._search(search_query(inp["question"], inp.get("history", ())),
                                     inp.get("k"), inp.get("mode"))
        )
        # The whole chain: {"question", "history"?, "k"?, "mode"?, "params"?} -> events.
        # Subtle: RunnableGenerator passes ``config`` to functions that accept it (so the
        # decoder's run nests under the chain's in callbacks and astream_events); its type
        # hints know only the one-argument form.
        transform: Any = self._transform
        atransform: Any = self._atransform
        self.runnable: Runnable[dict[str, Any], ChainEvent] = RunnableGenerator(
            transform, atransform, name="docchat_answer"
        )

    # --- steps shared by the sync and async paths -------------------------------------------

    def _search(self, query: str, k: int | None, mode: RetrieverMode | None,
                config: RunnableConfig | None = None) -> list[Document]:
        search = getattr(self.retriever, "search", None)
        if callable(search) and (k is not None or mode is not None):
            return list(search(query, k=k, mode=mode))
        docs = list(self.retriever.invoke(query, config))
        return docs[:k] if k is not None else docs

    def _count_tokens(self, text: str) -> int:
        if isinstance(self.llm, GeneratorChatModel):
            return self.llm.count_tokens(text)
        return len(text) // 3 + 1  # no tokenizer for remote models: a generous estimate

    def budget(self, params: DecodingParams) -> int:
        native = self.llm.context_window if isinstance(self.llm, GeneratorChatModel) else None
        fallback = None if native else DEFAULT_CONTEXT_WINDOW
        window = min(w for w in (self.context_tokens, native, fallback) if w)
        return window - params.max_new_tokens

    def _plan(self, question: str, params: DecodingParams, query: str, docs: list[Document],
              t0: float, retrieve_s: float, history: Sequence[tuple[str, str]] = (),
              mode: RetrieverMode | None = None) -> _Plan:
        sources = to_sources(docs)
        plan = _Plan(question, query, sources, {"retrieve_s": retrieve_s}, t0)
        if self.routes:
            ctx = RouteContext(question, history, docs, sources,
                               lambda q, k: self._search(q, k, mode), self.llm, params, plan.timings)
            for route in self.routes:
                routed = route(ctx)
                if routed is not None:
                    plan.timings["first_token_s"] = plan.timings["total_s"] = time.perf_counter() - t0
                    routed.timings = plan.timings
                    plan.shown = routed.sources
                    plan.answer = routed
                    return plan
        weak = weak_evidence(docs, self.abstain_threshold)
        if weak and (self.reader is None or self.reader_confident_support <= 0):
            plan.answer = self._refusal(plan)
            return plan
        if self.reader is None:
            prompt = build_prompt(question, sources, count_tokens=self._count_tokens,
                                  budget=self.budget(params), style=self.style)
            plan.shown = sources[: len(prompt.sources)]
        else:
            plan.spans, reading = read_sources(
                question, sources, self.reader, min_margin=self.reader_min_margin,
                scorer=self._scorer(), decoder_weight=self.reader_decoder_weight,
                overlap_weight=self.reader_overlap_weight, timings=plan.timings,
                # Passages far from the question in embedding space are read too (the
                # question may paraphrase them: "one honking great idea" for the Zen of
                # Python), but only a span the reader is sure of, in a sentence that repeats
                # the question, is answered from them.
                min_support=max(self.reader_min_support, self.reader_confident_support) if weak
                else self.reader_min_support)
            if reading is None:
                plan.answer = self._refusal(plan)
                return plan
            plan.evidence, quoted = reading.evidence, reading.quoted
            plan.read = [q.text for q in quoted]
            prompt = build_prompt(question, quoted, count_tokens=self._count_tokens,
                                  budget=self.budget(params), style=self.style, renumber=False)
        plan.messages = messages_of(prompt.messages)
        plan.prompt_sources = prompt.sources
        return plan

    def _scorer(self) -> ReplyScorer | None:
        """The local decoder, when it can score replies (a remote chat model cannot)."""
        generator = getattr(self.llm, "generator", None)
        if self.reader_decoder_weight > 0 and isinstance(generator, ReplyScorer):
            return generator
        return None

    def _refusal(self, plan: _Plan) -> Answer:
        plan.timings["first_token_s"] = plan.timings["total_s"] = time.perf_counter() - plan.t0
        return Answer(ABSTAIN_TEXT, True, plan.shown, [], plan.timings, method="abstained")

    def _add(self, reply: _Reply, piece: str) -> bool:
        """Append a piece of the decoder's reply; True when the reply is complete."""
        text = reply.text + piece
        cut = text.find("\n", len(text) - len(text.lstrip()))
        if self.stop_at_newline and cut != -1:
            # The prompt asks for one short line; what follows is rambling.
            reply.pieces.append(text[len(reply.text):cut])
            reply.stopped = True
            return True
        reply.pieces.append(piece)
        return False

    def _finish(self, plan: _Plan, reply: _Reply) -> Iterator[ChainEvent]:
        """Check the reply, then emit what the user may read and the final answer."""
        text = (self.style.answer_prefix or "") + reply.text
        text = text.strip()
        if not reply.stopped and not ends_sentence(strip_markers(text)) and len(text.split()) > 12:
            # Cut off by the token budget mid-sentence: keep the sentences that ended.
            text = trim_to_sentence(text)
        answer = self._decide(plan, text)
        if answer.method == "generated" and answer.text.startswith(reply.text.strip()) and reply.text.strip():
            # The decoder's own pieces, then the citation markers added after the fact.
            emitted = ""
            for piece in reply.pieces:
                piece = piece if emitted else piece.lstrip()
                if piece:
                    emitted += piece
                    yield self._token(plan, piece)
            if len(answer.text) > len(emitted):
                yield self._token(plan, answer.text[len(emitted):])
        else:
            yield self._token(plan, answer.text)
        plan.timings["total_s"] = time.perf_counter() - plan.t0
        answer.timings = plan.timings
        yield Done(answer)

    def _decided(self, plan: _Plan, query: str) -> Iterator[ChainEvent]:
        """A refusal, or a route's answer: decided without the reader's decoder pass."""
        answer = plan.answer
        assert answer is not None
        yield Retrieved(plan.shown, answer.abstained, query)
        if not answer.abstained:
            yield Token(answer.text)
        yield Done(answer)

    def _token(self, plan: _Plan, text: str) -> Token:
        plan.timings.setdefault("first_token_s", time.perf_counter() - plan.t0)
        return Token(text)

    def _decide(self, plan: _Plan, reply: str) -> Answer:
        shown, timings = plan.shown, plan.timings
        if self.reader is None:
            if not reply or says_unknown(reply):
                return Answer(ABSTAIN_TEXT, True, shown, [], timings, method="abstained")
            # supported() on one passage implies most of the reply's words are in the passages.
            if not any(supported(reply, s.text) for s in plan.prompt_sources):
                return Answer(UNGROUNDED_TEXT, True, shown, [], timings, method="abstained")
            cited = cite(reply, plan.prompt_sources)
            return Answer(cited.text, False, shown, cited.cited, timings)
        # Checked against what the decoder read, not the whole passage: a name it adds from
        # elsewhere in the passage (another row of the table) is its own invention.
        backing = [e for e, seen in zip(plan.evidence, plan.read, strict=True) if supported(reply, seen)]
        if reply and not says_unknown(reply) and backing and agrees(reply, plan.spans[:AGREE_TOP]):
            cited = cite(reply, [e.source for e in backing])
            quotes = [e.quote() for e in backing if e.source.n in cited.cited] or [backing[0].quote()]
            return Answer(cited.text, False, shown, cited.cited, timings, evidence=quotes)
        # The decoder's reply cannot be backed up: the reader's span, and where it stands.
        best = plan.evidence[0]
        span = best.span or plan.spans[0]
        # A looked-up span is checked against what was looked up (a document's name is not
        # in its text); the reader's against the passage.
        backed_by = plan.read[0] if is_lookup(span) else best.source.text
        if not supported(span.text, backed_by):
            # Checked like the decoder's words: nothing is shown as an answer unbacked.
            return Answer(ABSTAIN_TEXT, True, shown, [], timings, method="abstained")
        text = f"{span.text} [{best.source.n}]"
        return Answer(text, False, shown, [best.source.n], timings, evidence=[best.quote()],
                      method="extracted", overruled=competing(reply, span.text))

    # --- the sync and async paths --------------------------------------------------------------

    def _start(self, inp: dict[str, Any]) -> tuple[str, DecodingParams, float]:
        question = inp.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty")
        query = search_query(question, inp.get("history", ()))
        return query, inp.get("params") or self.params, time.perf_counter()

    def _transform(self, inputs: Iterator[dict[str, Any]], config: RunnableConfig) -> Iterator[ChainEvent]:
        for inp in inputs:
            query, params, t0 = self._start(inp)
            docs = self._search(query, inp.get("k"), inp.get("mode"), config)
            plan = self._plan(inp["question"], params, query, docs, t0, time.perf_counter() - t0,
                              inp.get("history", ()), inp.get("mode"))
            if plan.answer is not None:
                yield from self._decided(plan, query)
                continue
            yield Retrieved(plan.shown, False, query)
            reply = _Reply()
            stream: Any = self.llm.stream(plan.messages, config, **call_options(self.llm, params))
            try:
                for chunk in stream:
                    plan.timings.setdefault("decoder_first_token_s", time.perf_counter() - t0)
                    if self._add(reply, chunk.text):
                        break
            finally:
                stream.close()  # stops a decoder still writing
            yield from self._finish(plan, reply)

    async def _atransform(self, inputs: AsyncIterator[dict[str, Any]],
                          config: RunnableConfig) -> AsyncIterator[ChainEvent]:
        async for inp in inputs:
            query, params, t0 = self._start(inp)
            # The same retrieval as the sync path, in a worker thread (the retrievers here are
            # synchronous: their own ainvoke would do just that).
            docs = await run_in_executor(config, self._search, query, inp.get("k"), inp.get("mode"), config)
            plan = await run_in_executor(config, self._plan, inp["question"], params, query, docs, t0,
                                         time.perf_counter() - t0, inp.get("history", ()), inp.get("mode"))
            if plan.answer is not None:
                for event in self._decided(plan, query):
                    yield event
                continue
            yield Retrieved(plan.shown, False, query)
            reply = _Reply()
            astream: Any = self.llm.astream(plan.messages, config, **call_options(self.llm, params))
            try:
                async for chunk in astream:
                    plan.timings.setdefault("decoder_first_token_s", time.perf_counter() - t0)
                    if self._add(reply, chunk.text):
                        break
            finally:
                await astream.aclose()
            for event in self._finish(plan, reply):
                yield event

    # --- the API the CLI, the app and the HTTP server call ------------------------------------

    @staticmethod
    def _input(question: str, history: Sequence[tuple[str, str]], k: int | None,
               mode: RetrieverMode | None, params: DecodingParams | None) -> dict[str, Any]:
        return {"question": question, "history": list(history), "k": k, "mode": mode, "params": params}

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        k: int | None = None,
        mode: RetrieverMode | None = None,
        params: DecodingParams | None = None,
        config: RunnableConfig | None = None,
    ) -> Iterator[ChainEvent]:
        """Events in order: one ``Retrieved``, zero or more ``Token``, one ``Done``."""
        return self.runnable.stream(self._input(question, history, k, mode, params), config)

    def astream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        k: int | None = None,
        mode: RetrieverMode | None = None,
        params: DecodingParams | None = None,
        config: RunnableConfig | None = None,
    ) -> AsyncIterator[ChainEvent]:
        return self.runnable.astream(self._input(question, history, k, mode, params), config)

    def invoke(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        k: int | None = None,
        mode: RetrieverMode | None = None,
        params: DecodingParams | None = None,
    ) -> Answer:
        for event in self.stream(question, history, k=k, mode=mode, params=params):
            if isinstance(event, Done):
                return event.answer
        raise RuntimeError("the chain ended without an answer")  # the stream always ends in Done

    def as_runnable(self) -> Runnable[dict[str, Any], Answer]:
        """The whole chain as a Runnable: ``{"question", "history"?, "k"?, "mode"?} -> Answer``."""
        return RunnableLambda(
            lambda d: self.invoke(d["question"], d.get("history", ()), k=d.get("k"), mode=d.get("mode"))
        )

