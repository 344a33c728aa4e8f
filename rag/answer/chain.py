"""The answering chain: rewrite follow-up -> retrieve -> abstain? -> read -> generate -> check.

It is a LangChain Runnable (``RagChain.runnable``, a RunnableGenerator with a sync and an
async path): ``stream`` / ``astream`` yield the chain's events (``Retrieved``, ``Draft``...,
``Token``..., ``Done``) and ``astream_events`` also shows the decoder's own tokens as they are
written. Drafts are the decoder's reply piece by piece before it is checked, for a page to
show as provisional; Tokens carry only the checked answer, so a client that must never
show unbacked text (the HTTP API) ignores Drafts. A question in two parts ("when did it
start, and what is its goal?") is answered part by part and combined (``rag.answer.parts``).
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
from typing import Any

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator, RunnableLambda
from langchain_core.runnables.config import run_in_executor

from rag.answer.citations import strip_markers
from rag.answer.events import (
    ABSTAIN_TEXT,
    UNGROUNDED_TEXT,
    ChainEvent,
    Done,
    Draft,
    Plan,
    Reply,
    Retrieved,
    Token,
    decide,
)
from rag.answer.followups import resolve_follow_up
from rag.answer.parts import Merged, Part, combine, merge_sources, merge_timings, split_question
from rag.answer.prompt import PromptStyle, build_prompt
from rag.answer.reading import read_sources
from rag.answer.routes import Route, RouteContext
from rag.answer.steps import messages_of, search_query, to_sources, weak_evidence
from rag.models.chat_model import GeneratorChatModel, call_options
from rag.models.span_reader import SpanReader
from rag.settings import RetrieverMode
from rag.text import ends_sentence, trim_to_sentence
from rag.types import Answer, DecodingParams, Generator, ReplyScorer, Source

#: Context window assumed for chat models that do not tell (remote servers).
DEFAULT_CONTEXT_WINDOW = 8192

# Re-exported: the events and texts callers import from the chain.
__all__ = ["ABSTAIN_TEXT", "UNGROUNDED_TEXT", "ChainEvent", "Done", "Draft", "RagChain", "Retrieved", "Token"]


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
              mode: RetrieverMode | None = None) -> Plan:
        sources = to_sources(docs)
        plan = Plan(question, query, sources, {"retrieve_s": retrieve_s}, t0)
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

    def _refusal(self, plan: Plan) -> Answer:
        plan.timings["first_token_s"] = plan.timings["total_s"] = time.perf_counter() - plan.t0
        return Answer(ABSTAIN_TEXT, True, plan.shown, [], plan.timings, method="abstained")

    def _add(self, reply: Reply, piece: str) -> bool:
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

    def _finish(self, plan: Plan, reply: Reply) -> Iterator[ChainEvent]:
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

    def _decided(self, plan: Plan, query: str) -> Iterator[ChainEvent]:
        """A refusal, or a route's answer: decided without the reader's decoder pass."""
        answer = plan.answer
        assert answer is not None
        yield Retrieved(plan.shown, answer.abstained, query)
        if not answer.abstained:
            yield Token(answer.text)
        yield Done(answer)

    def _token(self, plan: Plan, text: str) -> Token:
        plan.timings.setdefault("first_token_s", time.perf_counter() - plan.t0)
        return Token(text)

    def _decide(self, plan: Plan, reply: str) -> Answer:
        return decide(plan, reply, reader=self.reader is not None)

    # --- questions in several parts (rag.answer.parts) ---------------------------------------

    def _plan_parts(self, parts: Sequence[Part], inp: dict[str, Any], params: DecodingParams,
                    t0: float, config: RunnableConfig) -> list[Plan]:
        """Each part searched and read on its own, as if asked alone."""
        plans: list[Plan] = []
        history = inp.get("history", ())
        for part in parts:
            query = search_query(part.question, history)
            t = time.perf_counter()
            docs = self._search(query, inp.get("k"), inp.get("mode"), config)
            plans.append(self._plan(part.question, params, query, docs, t0, time.perf_counter() - t,
                                    history, inp.get("mode")))
        return plans

    @staticmethod
    def _retrieved_parts(plans: Sequence[Plan], sources: list[Source]) -> Retrieved:
        refused = all(p.answer is not None and p.answer.abstained for p in plans)
        return Retrieved(sources, refused, "; ".join(p.query for p in plans))

    def _checked(self, plan: Plan, reply: Reply) -> Answer:
        """The checked answer to one part (its Tokens are not shown: the combined text is)."""
        *_, done = self._finish(plan, reply)
        assert isinstance(done, Done)  # _finish always ends with Done
        return done.answer

    def _combined(self, parts: Sequence[Part], plans: Sequence[Plan], merged: Merged,
                  t0: float) -> Iterator[ChainEvent]:
        answers = [p.answer for p in plans if p.answer is not None]
        timings = merge_timings([p.timings for p in plans])
        answer = combine(parts, answers, merged, ABSTAIN_TEXT, timings)
        timings["first_token_s"] = time.perf_counter() - t0
        if not answer.abstained:
            yield Token(answer.text)
        timings["total_s"] = time.perf_counter() - t0
        yield Done(answer)

    # --- the sync and async paths --------------------------------------------------------------

    def _start(self, inp: dict[str, Any]) -> tuple[str, str, DecodingParams, float]:
        """The question as it is read (a follow-up rewritten to name its subject:
        "and its population?" -> "What is the population of Germany?"), the search text,
        the decoding parameters and the start time."""
        question = inp.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("the question is empty")
        history = inp.get("history", ())
        query = search_query(question, history)
        params = inp.get("params") or self.params
        return resolve_follow_up(question, history), query, params, time.perf_counter()

    def _transform(self, inputs: Iterator[dict[str, Any]], config: RunnableConfig) -> Iterator[ChainEvent]:
        for inp in inputs:
            question, query, params, t0 = self._start(inp)
            parts = split_question(question)
            if len(parts) > 1:
                plans = self._plan_parts(parts, inp, params, t0, config)
                merged = merge_sources([p.shown for p in plans])
                yield self._retrieved_parts(plans, merged.sources)
                for plan in plans:
                    if plan.answer is None:
                        reply = Reply()
                        yield from self._write(plan, params, config, reply)
                        plan.answer = self._checked(plan, reply)
                        if reply.text.strip():
                            yield Draft(" ")  # the next part's drafts read as a new sentence
                yield from self._combined(parts, plans, merged, t0)
                continue
            docs = self._search(query, inp.get("k"), inp.get("mode"), config)
            plan = self._plan(question, params, query, docs, t0, time.perf_counter() - t0,
                              inp.get("history", ()), inp.get("mode"))
            if plan.answer is not None:
                yield from self._decided(plan, query)
                continue
            yield Retrieved(plan.shown, False, query)
            reply = Reply()
            yield from self._write(plan, params, config, reply)
            yield from self._finish(plan, reply)

    def _write(self, plan: Plan, params: DecodingParams, config: RunnableConfig,
               reply: Reply) -> Iterator[Draft]:
        """Run the decoder into ``reply``, showing each piece as a Draft as it comes."""
        stream: Any = self.llm.stream(plan.messages, config, **call_options(self.llm, params))
        try:
            for chunk in stream:
                plan.timings.setdefault("decoder_first_token_s", time.perf_counter() - plan.t0)
                complete = self._add(reply, chunk.text)
                if draft := self._draft(plan, reply):
                    yield draft
                if complete:
                    break
        finally:
            stream.close()  # stops a decoder still writing (also when the reader left)

    def _draft(self, plan: Plan, reply: Reply) -> Draft | None:
        piece = reply.pieces[-1] if reply.pieces else ""
        if not piece or (len(reply.pieces) == 1 and not piece.strip()):
            return None
        plan.timings.setdefault("first_draft_s", time.perf_counter() - plan.t0)
        return Draft(piece)

    async def _atransform(self, inputs: AsyncIterator[dict[str, Any]],
                          config: RunnableConfig) -> AsyncIterator[ChainEvent]:
        async for inp in inputs:
            question, query, params, t0 = self._start(inp)
            parts = split_question(question)
            if len(parts) > 1:
                plans = await run_in_executor(config, self._plan_parts, parts, inp, params, t0, config)
                merged = merge_sources([p.shown for p in plans])
                yield self._retrieved_parts(plans, merged.sources)
                for plan in plans:
                    if plan.answer is None:
                        reply = Reply()
                        async for draft in self._awrite(plan, params, config, reply):
                            yield draft
                        plan.answer = self._checked(plan, reply)
                        if reply.text.strip():
                            yield Draft(" ")
                for event in self._combined(parts, plans, merged, t0):
                    yield event
                continue
            # The same retrieval as the sync path, in a worker thread (the retrievers here are
            # synchronous: their own ainvoke would do just that).
            docs = await run_in_executor(config, self._search, query, inp.get("k"), inp.get("mode"), config)
            plan = await run_in_executor(config, self._plan, question, params, query, docs, t0,
                                         time.perf_counter() - t0, inp.get("history", ()), inp.get("mode"))
            if plan.answer is not None:
                for event in self._decided(plan, query):
                    yield event
                continue
            yield Retrieved(plan.shown, False, query)
            reply = Reply()
            async for draft in self._awrite(plan, params, config, reply):
                yield draft
            for event in self._finish(plan, reply):
                yield event

    async def _awrite(self, plan: Plan, params: DecodingParams, config: RunnableConfig,
                      reply: Reply) -> AsyncIterator[Draft]:
        astream: Any = self.llm.astream(plan.messages, config, **call_options(self.llm, params))
        try:
            async for chunk in astream:
                plan.timings.setdefault("decoder_first_token_s", time.perf_counter() - plan.t0)
                complete = self._add(reply, chunk.text)
                if draft := self._draft(plan, reply):
                    yield draft
                if complete:
                    break
        finally:
            await astream.aclose()

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
        """Events in order: one ``Retrieved``, zero or more ``Draft`` (the decoder's words as
        written, unchecked), zero or more ``Token`` (the checked answer), one ``Done``."""
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

