"""The answering chain: rewrite follow-up -> retrieve -> abstain? -> prompt -> generate -> cite.

The retrieval half is a LangChain Runnable (``RagChain.prepare``) so it composes with the
ecosystem; the generation half streams events (``Retrieved``, ``Token``..., ``Done``) that
the CLI and UI render as they arrive.

Follow-up questions: a 135M model cannot be trusted to rewrite "when was it built?" into a
standalone question (it rewrites freely and drops the subject), and a rewrite costs a full
generate call before retrieval even starts. The rewrite here is deterministic: a short
question, or one leaning on a pronoun, is searched together with the previous user
question, which carries the subject the pronoun points to. The reader still sees the user's
own words.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda

from rag.citations import cite, grounded_fraction, says_unknown
from rag.prompt import PromptStyle, build_prompt
from rag.settings import RetrieverMode, Settings
from rag.types import Answer, DecodingParams, Encoder, Generator, Source

#: What the user reads when the documents do not answer the question.
ABSTAIN_TEXT = "The documents do not contain an answer to this question."
UNGROUNDED_TEXT = (
    "I could not find an answer in the documents that I can back up. "
    "The closest passages are below."
)
#: Below this share of content words found in the passages, a reply is not an answer
#: drawn from the documents (rag.citations.grounded_fraction).
MIN_GROUNDED = 0.5

_PRONOUNS = frozenset({
    "it", "its", "it's", "they", "them", "their", "theirs", "he", "him", "his", "she", "her",
    "hers", "this", "that", "these", "those", "there", "then", "one", "ones", "former", "latter",
})
_FOLLOW_UP_MAX_WORDS = 5


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


def decoding_params(settings: Settings) -> DecodingParams:
    return DecodingParams(
        max_new_tokens=settings.max_new_tokens,
        do_sample=settings.do_sample,
        temperature=settings.temperature,
        top_k=settings.top_k,
        top_p=settings.top_p,
        repetition_penalty=settings.repetition_penalty,
    )


def is_follow_up(question: str) -> bool:
    words = re.findall(r"[\w']+", question.lower())
    return len(words) <= _FOLLOW_UP_MAX_WORDS or any(w in _PRONOUNS for w in words)


def search_query(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The text to retrieve with: the question, plus the previous one for a follow-up.

    ``history`` holds (user question, assistant answer) turns, oldest first.
    """
    if history and is_follow_up(question):
        return f"{history[-1][0].strip()} {question.strip()}"
    return question


def to_sources(docs: Sequence[Document]) -> list[Source]:
    out: list[Source] = []
    for n, d in enumerate(docs, start=1):
        m = d.metadata
        page = m.get("page")
        out.append(Source(
            n=n,
            source=str(m.get("source", "")),
            page=None if page is None else int(page),
            score=float(m.get("score", 0.0) or 0.0),
            text=d.page_content,
            chunk_id=str(m.get("id", "")),
            start=int(m.get("start", 0) or 0),
            end=int(m.get("end", len(d.page_content)) or 0),
        ))
    return out


def weak_evidence(docs: Sequence[Document], threshold: float) -> bool:
    """No passage, or the best passage's cosine to the question is below the threshold.

    The cosine (``dense_score``), not the ranking score, is compared: RRF and BM25 scores
    are not on a scale a threshold can mean anything on.
    """
    if not docs:
        return True
    scores = [d.metadata.get("dense_score") for d in docs]
    known = [float(s) for s in scores if s is not None]
    return bool(known) and max(known) < threshold


@dataclass
class _Prepared:
    question: str
    query: str
    docs: list[Document]
    retrieve_s: float
    extra: dict[str, Any] = field(default_factory=dict)


class RagChain:
    def __init__(
        self,
        retriever: BaseRetriever,
        generator: Generator,
        *,
        abstain_threshold: float,
        params: DecodingParams | None = None,
        context_tokens: int | None = None,
        style: PromptStyle | None = None,
        stop_at_newline: bool = True,
    ) -> None:
        self.retriever = retriever
        self.generator = generator
        self.abstain_threshold = abstain_threshold
        self.params = params or DecodingParams()
        self.context_tokens = context_tokens
        self.style = style or PromptStyle()
        self.stop_at_newline = stop_at_newline
        # question + history -> rewritten query -> documents, as a LangChain Runnable.
        self.prepare: Runnable[dict[str, Any], _Prepared] = RunnableLambda(self._rewrite) | RunnableLambda(
            self._retrieve
        )

    # --- retrieval half ------------------------------------------------------------------

    @staticmethod
    def _rewrite(inp: dict[str, Any]) -> dict[str, Any]:
        return {**inp, "query": search_query(inp["question"], inp.get("history", ()))}

    def _retrieve(self, inp: dict[str, Any]) -> _Prepared:
        t0 = time.perf_counter()
        k, mode = inp.get("k"), inp.get("mode")
        search = getattr(self.retriever, "search", None)
        if callable(search) and (k is not None or mode is not None):
            docs = list(search(inp["query"], k=k, mode=mode))
        else:
            docs = list(self.retriever.invoke(inp["query"]))
            if k is not None:
                docs = docs[:k]
        return _Prepared(inp["question"], inp["query"], docs, time.perf_counter() - t0)

    # --- whole chain ---------------------------------------------------------------------

    def budget(self, params: DecodingParams) -> int:
        window = self.context_tokens or self.generator.context_window
        return min(window, self.generator.context_window) - params.max_new_tokens

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        *,
        k: int | None = None,
        mode: RetrieverMode | None = None,
        params: DecodingParams | None = None,
    ) -> Iterator[ChainEvent]:
        """Events in order: one ``Retrieved``, zero or more ``Token``, one ``Done``."""
        if not question.strip():
            raise ValueError("the question is empty")
        params = params or self.params
        t0 = time.perf_counter()
        prep = self.prepare.invoke({"question": question, "history": list(history), "k": k, "mode": mode})
        sources = to_sources(prep.docs)
        timings = {"retrieve_s": prep.retrieve_s}

        if weak_evidence(prep.docs, self.abstain_threshold):
            yield Retrieved(sources, abstained=True, search_query=prep.query)
            timings["first_token_s"] = timings["total_s"] = time.perf_counter() - t0
            yield Done(Answer(ABSTAIN_TEXT, True, sources, [], timings))
            return

        prompt = build_prompt(
            question, sources, count_tokens=self.generator.count_tokens,
            budget=self.budget(params), style=self.style,
        )
        # Show the passages as the user retrieved them (untruncated), numbered as in the prompt.
        shown = sources[: len(prompt.sources)]
        yield Retrieved(shown, abstained=False, search_query=prep.query)

        pieces: list[str] = []
        tokens = iter(self.generator.stream(prompt.messages, params))
        try:
            for piece in tokens:
                if "first_token_s" not in timings:
                    timings["first_token_s"] = time.perf_counter() - t0
                so_far = "".join(pieces)
                text = so_far + piece
                cut = text.find("\n", len(text) - len(text.lstrip()))
                if self.stop_at_newline and cut != -1:
                    # The tuned prompt asks for one short line; what follows is rambling.
                    head = text[len(so_far):cut]
                    if head:
                        pieces.append(head)
                        yield Token(head)
                    break  # closing the stream stops generation
                pieces.append(piece)
                yield Token(piece)
        finally:
            close = getattr(tokens, "close", None)
            if close is not None:
                close()  # stops a generator still producing (early stop, or our caller left)
        timings.setdefault("first_token_s", time.perf_counter() - t0)
        reply = (self.style.answer_prefix or "") + "".join(pieces)
        reply = reply.strip()

        if says_unknown(reply):
            timings["total_s"] = time.perf_counter() - t0
            yield Done(Answer(ABSTAIN_TEXT, True, shown, [], timings))
            return
        if grounded_fraction(reply, prompt.sources) < MIN_GROUNDED:
            timings["total_s"] = time.perf_counter() - t0
            yield Done(Answer(UNGROUNDED_TEXT, True, shown, [], timings))
            return
        cited = cite(reply, prompt.sources)
        if cited.text.startswith(reply) and len(cited.text) > len(reply):
            yield Token(cited.text[len(reply):])  # markers added after the fact
        timings["total_s"] = time.perf_counter() - t0
        yield Done(Answer(cited.text, False, shown, cited.cited, timings))

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
        raise RuntimeError("the chain ended without an answer")  # stream() always ends in Done

    def as_runnable(self) -> Runnable[dict[str, Any], Answer]:
        """The whole chain as a Runnable: ``{"question", "history"?, "k"?, "mode"?} -> Answer``."""
        return RunnableLambda(
            lambda d: self.invoke(d["question"], d.get("history", ()), k=d.get("k"), mode=d.get("mode"))
        )


def build_chain(
    settings: Settings,
    index_dir: Path,
    *,
    encoder: Encoder | None = None,
    generator: Generator | None = None,
) -> RagChain:
    """The one place the real encoder and decoder are built (unless injected)."""
    # Imported here: these pull in FAISS, bm25s and the model libraries.
    from rag.embed import build_encoder
    from rag.retrieve import build_retriever
    from rag.store import open_index

    enc: Encoder = encoder if encoder is not None else build_encoder(settings)
    index = open_index(Path(index_dir), enc)
    if generator is None:
        from rag.generate import build_generator

        generator = build_generator(settings)
    return RagChain(
        build_retriever(settings, index, enc),
        generator,
        abstain_threshold=settings.abstain_threshold,
        params=decoding_params(settings),
        context_tokens=settings.context_tokens,
    )
