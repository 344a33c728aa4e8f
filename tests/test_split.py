"""Splitter properties on hostile input (hypothesis) and boundary preferences."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.split import effective_sizes, split_document, split_text
from rag.testing import FakeEncoder
from rag.types import Page, ParsedDocument

_NON_SPACE = re.compile(r"\S")


def _check(text: str, spans: list[tuple[int, int]], enc: FakeEncoder, limit: int) -> None:
    covered = [False] * len(text)
    for s, e in spans:
        assert 0 <= s < e <= len(text), (s, e, len(text))
        piece = text[s:e]
        assert piece.strip() == piece  # spans start and end on tokens, never on whitespace
        assert len(enc.token_offsets(piece)) <= limit
        for c in range(s, e):
            covered[c] = True
    # Every non-whitespace character (every FakeEncoder token) is in some chunk.
    missing = [m.start() for m in _NON_SPACE.finditer(text) if not covered[m.start()]]
    assert not missing, f"uncovered characters at {missing[:5]}"
    assert spans == sorted(spans), "chunks come in text order"


_hostile = st.one_of(
    st.just(""),
    st.text(alphabet=" \t\n\r\f\v\u00a0\u2003", max_size=200),  # whitespace only
    st.text(alphabet="ab", min_size=1, max_size=5000).map(lambda s: s.replace("b", "a")),  # giant word
    st.text(max_size=3000),  # any unicode, incl. surrogates-free astral chars and controls
    st.lists(st.sampled_from(["alpha", "beta", "γάμμα", "日本語", "x"]), max_size=800).map(" ".join),
    st.lists(
        st.sampled_from(["word", "word.", "end!", "\n", "\n\n", ",", "(paren)", "ünïcödé", "  "]),
        max_size=600,
    ).map(" ".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_hostile,
    size=st.integers(min_value=1, max_value=60),
    overlap=st.integers(min_value=0, max_value=59),
    max_tokens=st.integers(min_value=1, max_value=60),
)
def test_split_properties(text: str, size: int, overlap: int, max_tokens: int) -> None:
    enc = FakeEncoder(max_tokens=max_tokens)
    size, overlap = effective_sizes(max_tokens, size, overlap)
    spans = split_text(text, enc.token_offsets, size=size, overlap=overlap, max_tokens=max_tokens)
    _check(text, spans, enc, max_tokens)
    if not _NON_SPACE.search(text):
        assert spans == []


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=50_000).filter(lambda t: bool(t.strip())))
def test_document_chunks_match_page_text(text: str) -> None:
    enc = FakeEncoder(max_tokens=32)
    doc = ParsedDocument("a/b.txt", [Page(3, text), Page(4, "second page text")])
    chunks = split_document(doc, enc, chunk_tokens=24, chunk_overlap=4)
    for c in chunks:
        page_text = text if c.page == 3 else "second page text"
        assert page_text[c.start : c.end] == c.text
        assert c.source == "a/b.txt"
        assert len(enc.token_offsets(c.text)) <= 32
    assert chunks[-1].page == 4 and chunks[-1].text == "second page text"


def test_long_text_crosses_block_boundaries() -> None:
    # Longer than ingest.split.BLOCK_CHARS, so it is tokenized in several blocks.
    text = "\n\n".join(f"Paragraph {i}. " + "lorem ipsum dolor " * 40 for i in range(120))
    enc = FakeEncoder(max_tokens=100)
    spans = split_text(text, enc.token_offsets, size=100, overlap=10, max_tokens=100)
    _check(text, spans, enc, 100)
    assert len(text) > 60_000 and len(spans) > 60


def test_prefers_paragraph_then_sentence_boundaries() -> None:
    enc = FakeEncoder(max_tokens=20)
    para1 = "one two three four five six seven eight nine ten eleven twelve."
    text = para1 + "\n\nthirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty more"
    spans = split_text(text, enc.token_offsets, size=20, overlap=0, max_tokens=20)
    assert text[spans[0][0] : spans[0][1]] == para1  # not 20 tokens reaching into paragraph 2

    text = "Alpha beta gamma delta epsilon. Zeta eta theta iota kappa lambda mu nu xi omicron pi"
    spans = split_text(text, enc.token_offsets, size=10, overlap=0, max_tokens=20)
    assert text[spans[0][0] : spans[0][1]] == "Alpha beta gamma delta epsilon."


def test_overlap_repeats_tokens_and_starts_on_a_word() -> None:
    enc = FakeEncoder(max_tokens=10)
    text = " ".join(f"w{i}" for i in range(40))
    spans = split_text(text, enc.token_offsets, size=10, overlap=3, max_tokens=10)
    words = [text[s:e].split() for s, e in spans]
    assert all(len(w) == 10 for w in words[:-1])
    for a, b in itertools.pairwise(words):
        assert a[-3:] == b[:3]


class _ContextEncoder(FakeEncoder):
    """A tokenizer whose count depends on context: the first word of any input is split into
    one token per character (as word pieces do when a chunk starts mid-word)."""

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        offs = super().token_offsets(text)
        if not offs:
            return offs
        s, e = offs[0]
        return [(c, c + 1) for c in range(s, e)] + offs[1:]


def test_limit_is_checked_on_the_chunk_text_itself() -> None:
    enc = _ContextEncoder(max_tokens=8)
    # In context the whole text is 1 + 7 tokens; standalone chunks start with a long word
    # that costs one token per character, so the splitter must shrink them.
    text = "a " + " ".join(["supercalifragilistic"] * 7)
    spans = split_text(text, enc.token_offsets, size=8, overlap=0, max_tokens=8)
    for s, e in spans:
        assert len(enc.token_offsets(text[s:e])) <= 8
    covered = set().union(*(range(s, e) for s, e in spans))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_effective_sizes_caps_at_encoder_limit() -> None:
    assert effective_sizes(254, 200, 32) == (200, 32)
    assert effective_sizes(128, 200, 100) == (128, 64)
    with pytest.raises(ValueError, match="max_tokens"):
        effective_sizes(0, 200, 32)
