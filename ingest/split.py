"""Token-aware splitting: chunks the encoder sees whole, cut at the best nearby boundary.

Lengths are counted in the encoder's own tokens (``Encoder.token_offsets``): a chunk longer
than the encoder's maximum would be silently truncated when embedded, and the text past the
cut could never be found by dense search. Each chunk is a span ``[start, end)`` of its page
text, so citations can point at the exact passage.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence

from ingest.context import chunk_headers
from rag.types import Chunk, Encoder, ParsedDocument

TokenOffsets = Callable[[str], list[tuple[int, int]]]
Span = tuple[int, int]

#: A chunk holds at most this many characters per token of the encoder's maximum. Real
#: text averages 4-6 characters a token; the cap only bites on runs the tokenizer counts
#: as one token whatever their length (WordPiece turns any word over 100 characters into
#: one [UNK]): without it a 50 MB line of base64 became 2,622 chunks of 20,000 characters
#: that the encoder saw as "[UNK]", and every later search dragged them through BM25, the
#: reader and the prompt.
MAX_CHARS_PER_TOKEN = 10

#: Texts are tokenized in blocks of about this many characters (cut at a paragraph or line
#: break), so a 100 MB text file never becomes one list of millions of token spans.
BLOCK_CHARS = 20_000

# Boundary strengths: a chunk preferably ends at a paragraph, then a sentence, ...
_PARAGRAPH, _SENTENCE, _LINE, _CLAUSE, _WORD, _NONE = 5, 4, 3, 2, 1, 0
_SENTENCE_END = frozenset(".!?…。！？")
_CLAUSE_END = frozenset(",;:)]}–—")


def effective_sizes(max_tokens: int, chunk_tokens: int, chunk_overlap: int) -> tuple[int, int]:
    """Chunk size capped at the encoder's maximum; overlap at most half a chunk.

    Capping the overlap keeps every step moving at least half a chunk forward, so a
    huge overlap setting cannot make the number of chunks explode.
    """
    if max_tokens < 1:
        raise ValueError(f"encoder max_tokens must be >= 1, got {max_tokens}")
    size = max(1, min(chunk_tokens, max_tokens))
    return size, max(0, min(chunk_overlap, size // 2))


def split_document(
    doc: ParsedDocument, encoder: Encoder, chunk_tokens: int, chunk_overlap: int,
    *, headers: bool = True,
) -> list[Chunk]:
    """Chunks of every page of ``doc``; offsets are into that page's text.

    With ``headers`` each chunk carries its document/page header (``ingest.context``);
    the chunk is then shortened by the header's tokens, so header and passage together
    still fit the encoder and nothing is truncated.
    """
    size, overlap = effective_sizes(encoder.max_tokens, chunk_tokens, chunk_overlap)
    page_headers = chunk_headers(doc) if headers else [""] * len(doc.pages)
    chunks: list[Chunk] = []
    for page, header in zip(doc.pages, page_headers, strict=True):
        # +1: the line break between header and passage may be a token of its own.
        reserve = min(len(encoder.token_offsets(header)) + 1, encoder.max_tokens // 4) if header else 0
        limit = encoder.max_tokens - reserve
        spans = split_text(page.text, encoder.token_offsets, size=min(size, limit),
                           overlap=min(overlap, limit // 2), max_tokens=limit)
        for start, end in spans:
            chunks.append(Chunk(doc.source, page.number, start, end, page.text[start:end],
                                header=header))
    return chunks


def split_text(
    text: str, token_offsets: TokenOffsets, *, size: int, overlap: int, max_tokens: int
) -> list[Span]:
    """Character spans of the chunks of ``text``.

    Guarantees: ``token_offsets(text[s:e])`` has at most ``max_tokens`` tokens and every
    span at most ``max_tokens * MAX_CHARS_PER_TOKEN`` characters, spans start and end on
    token boundaries (or inside a token longer than that), and every token of ``text``
    lies in some span (overlapping spans share up to ``overlap`` tokens).
    """
    spans: list[Span] = []
    max_chars = max_tokens * MAX_CHARS_PER_TOKEN
    for b_start, b_end in _blocks(text, BLOCK_CHARS):
        block = text[b_start:b_end]
        offs = _cap_tokens(token_offsets(block), max_chars)
        for s, e in _split_tokens(block, offs, size, overlap, token_offsets, max_tokens,
                                  max_chars):
            spans.append((b_start + s, b_start + e))
    return spans


def _cap_tokens(offs: list[Span], max_chars: int) -> list[Span]:
    """Token spans with any token longer than ``max_chars`` cut into pieces of that size,
    so the chunker below can always end a chunk within the character cap."""
    if all(e - s <= max_chars for s, e in offs):
        return offs
    out: list[Span] = []
    for s, e in offs:
        out.extend((a, min(a + max_chars, e)) for a in range(s, e, max_chars))
    return out


def _blocks(text: str, max_chars: int) -> list[Span]:
    """Cut ``text`` into pieces of at most ``max_chars``, at the last paragraph/line/space."""
    out: list[Span] = []
    start, n = 0, len(text)
    while n - start > max_chars:
        limit = start + max_chars
        floor = start + max_chars // 2
        cut = -1
        for sep in ("\n\n", "\n", " "):
            i = text.rfind(sep, floor, limit)
            if i >= 0:
                cut = i + len(sep)
                break
        if cut <= start:
            cut = limit  # one giant "word": a hard cut is the only option
        out.append((start, cut))
        start = cut
    if start < n:
        out.append((start, n))
    return out


def _boundary(text: str, offs: Sequence[Span], k: int) -> int:
    """Strength of ending a chunk before token ``k`` (i.e. after token ``k - 1``)."""
    if k >= len(offs):
        return _PARAGRAPH + 1  # end of text beats everything
    prev_end, next_start = offs[k - 1][1], offs[k][0]
    gap = text[prev_end:next_start]
    if not gap:
        return _NONE  # inside a word (a word piece) or between a word and its punctuation
    if gap.count("\n") >= 2:
        return _PARAGRAPH
    last = text[prev_end - 1] if prev_end > 0 else ""
    # A closing quote or bracket after the full stop still ends the sentence.
    if last in _SENTENCE_END or (prev_end > 1 and text[prev_end - 2] in _SENTENCE_END):
        return _SENTENCE
    if "\n" in gap:
        return _LINE
    if last in _CLAUSE_END:
        return _CLAUSE
    return _WORD


def _split_tokens(
    text: str,
    offs: Sequence[Span],
    size: int,
    overlap: int,
    token_offsets: TokenOffsets,
    max_tokens: int,
    max_chars: int,
) -> list[Span]:
    spans: list[Span] = []
    n, i = len(offs), 0
    while i < n:
        hard = min(i + size, n)
        # Look for the strongest boundary in the second half of the window, latest first:
        # chunks stay at least half full, and end where a reader would pause.
        k, best = hard, _boundary(text, offs, hard)
        if best <= _PARAGRAPH:
            for cand in range(hard - 1, i + max(1, size // 2) - 1, -1):
                strength = _boundary(text, offs, cand)
                if strength > best:
                    k, best = cand, strength
        k = _fit(text, offs, i, k, token_offsets, max_tokens, max_chars, spans)
        if k >= n:
            break
        i = _next_start(text, offs, i, k, overlap)
    return spans


def _fit(
    text: str,
    offs: Sequence[Span],
    i: int,
    k: int,
    token_offsets: TokenOffsets,
    max_tokens: int,
    max_chars: int,
    spans: list[Span],
) -> int:
    """Append the span of tokens ``[i, k)``, shrunk until re-tokenizing it fits; return k.

    subtle: a tokenizer may count a piece differently on its own than inside the whole text
    (a word cut in the middle becomes different word pieces), so the limit is checked on the
    chunk text itself, which is exactly what the encoder will see.
    """
    s = offs[i][0]
    if offs[k - 1][1] - s > max_chars:
        # The last token that still ends within the character cap (tokens are capped at
        # max_chars by _cap_tokens, so token i always fits).
        k = max(i + 1, bisect.bisect_right(offs, s + max_chars, lo=i, hi=k,
                                           key=lambda t: t[1]))
    while True:
        s, e = offs[i][0], offs[k - 1][1]
        count = len(token_offsets(text[s:e]))
        if count <= max_tokens:
            spans.append((s, e))
            return k
        if k - i == 1:
            # One token that alone exceeds the limit (pathological tokenizers only): cut it
            # by characters so nothing is dropped.
            spans.extend(_char_pieces(text, s, e, token_offsets, max_tokens))
            return k
        k = max(i + 1, k - max(1, count - max_tokens))


def _char_pieces(
    text: str, s: int, e: int, token_offsets: TokenOffsets, max_tokens: int
) -> list[Span]:
    out: list[Span] = []
    while s < e:
        end = e
        while end - s > 1 and len(token_offsets(text[s:end])) > max_tokens:
            end = s + (end - s) // 2
        out.append((s, end))
        s = end
    return out


def _next_start(text: str, offs: Sequence[Span], i: int, k: int, overlap: int) -> int:
    """First token of the next chunk: ``overlap`` tokens back, moved to a word start."""
    if overlap <= 0:
        return k
    lo = k - overlap
    if lo <= i:
        return k  # the chunk was cut short: overlapping would barely move forward
    for t in range(lo, k):
        if offs[t][0] > offs[t - 1][1]:  # whitespace before it: a word starts here
            return t
    return lo
