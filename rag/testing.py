"""Deterministic stand-ins for the real models, for fast tests of the whole chain.

The fake encoder is a hashed bag of words (each lower-cased word seeds a SHA-256 vector), so
texts sharing words are close and retrieval over it behaves like a crude lexical search:
good enough to test ranking, fusion and abstention without loading a model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from rag.store import FileRecord, IndexWriter
from rag.text import content_words, sentence_spans
from rag.types import Chunk, DecodingParams, Encoder, FloatArray, Span

_WORD = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class FakeEncoder:
    name = "fake-hash-encoder"

    def __init__(self, dimension: int = 64, max_tokens: int = 128) -> None:
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.calls = 0  # texts embedded so far: lets tests prove nothing was re-embedded

    def _word_vector(self, word: str) -> FloatArray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)

    def embed(self, texts: Sequence[str]) -> FloatArray:
        self.calls += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            for m in _WORD.finditer(text.lower()):
                if m.group().isalnum():
                    out[i] += self._word_vector(m.group())
            norm = float(np.linalg.norm(out[i]))
            if norm > 0:
                out[i] /= norm
        return out

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]


class FakeGenerator:
    """Answers by echoing the first sentence of passage [1] of the prompt, citing it.

    It reads the prompt the chain built (the last user message, in the layout of
    ``rag.answer.prompt.format_passage``), so tests see that passages reached the decoder.
    ``script`` replaces that behaviour with a fixed reply (streamed word by word).
    """

    name = "fake-generator"

    def __init__(self, context_window: int = 2048, script: str | None = None) -> None:
        self.context_window = context_window
        self.script = script
        self.prompts: list[Sequence[dict[str, str]]] = []
        self.closed = 0  # streams closed before their end (the chain stopped early)

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text))

    def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]:
        self.prompts.append(list(messages))
        user = [m["content"] for m in messages if m["role"] == "user"]
        reply = self.script if self.script is not None else self._echo(user[-1] if user else "")
        words = reply.split(" ")
        emitted = 0
        try:
            for i, w in enumerate(words[: params.max_new_tokens]):
                yield w if i == 0 else " " + w
                emitted += 1
        finally:
            if emitted < min(len(words), params.max_new_tokens):
                self.closed += 1

    @staticmethod
    def _echo(prompt: str) -> str:
        m = re.search(r'\[1\][^\n]*\n"""\n(.+?)\n"""', prompt, re.DOTALL)
        if not m:
            return "I don't know."
        sentence = re.split(r"(?<=[.!?])\s", m.group(1).strip())[0]
        return f"{sentence} [1]"


class FakeReader:
    """A deterministic stand-in for :class:`rag.models.span_reader.SpanReader`.

    ``answers`` maps a question to the answer text it should find: where that text occurs
    in a passage, it is the span there (margin 5). Otherwise each sentence sharing content
    words with the question proposes its first number or capitalised word the question
    does not contain, with margin (shared words - 1): no overlap, no belief.
    """

    def __init__(self, answers: Mapping[str, str] | None = None) -> None:
        self.answers = dict(answers or {})
        self.calls: list[tuple[str, list[str]]] = []

    def read(self, question: str, passages: Sequence[str], *, top_n: int = 5) -> list[Span]:
        self.calls.append((question, list(passages)))
        spans: list[Span] = []
        wanted = self.answers.get(question)
        q_words = set(content_words(question))
        for p, text in enumerate(passages):
            if wanted is not None:
                at = text.find(wanted)
                if at != -1:
                    spans.append(Span(p, at, at + len(wanted), wanted, 5.0, 0.0))
                continue
            for a, b in sentence_spans(text):
                overlap = len(q_words & set(content_words(text[a:b])))
                for m in re.finditer(r"\b(\d[\d,.]*\d|\d|[A-Z][a-z]+)\b", text[a:b]):
                    if m.group().lower() not in q_words and overlap:
                        s, e = a + m.start(), a + m.end()
                        spans.append(Span(p, s, e, text[s:e], float(overlap), 1.0))
                        break
        return sorted(spans, key=lambda s: s.margin, reverse=True)


def write_index(path: Path, docs: Mapping[str, str], encoder: Encoder, *, pdf_page: int = 1,
                chunk_tokens: int = 100, chunk_overlap: int = 10) -> Path:
    """An index holding each text whole as one chunk (``.pdf`` sources on ``pdf_page``).

    Chain and CLI tests need passages they control exactly, without the splitter between.
    """
    with IndexWriter(path, encoder_name=encoder.name, dimension=encoder.dimension,
                     max_tokens=encoder.max_tokens, chunk_tokens=chunk_tokens,
                     chunk_overlap=chunk_overlap) as w:
        for source, text in docs.items():
            page = pdf_page if source.endswith(".pdf") else None
            sha = hashlib.sha256(text.encode()).hexdigest()
            w.add_file(FileRecord(source, sha, 1, 1, "2026-01-01T00:00:00Z"),
                       [Chunk(source, page, 0, len(text), text)], encoder.embed([text]))
        w.commit()
    return path
