"""Sidebar controls for how a question is answered, passed to the chain per request.

Nothing here rebuilds a model: retrieval depth, mode and decoding are arguments of
``RagChain.stream``, so changing them is free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import streamlit as st

from rag.settings import RetrieverMode, Settings
from rag.types import DecodingParams

MODE_LABELS: dict[RetrieverMode, str] = {
    "hybrid": "Hybrid (meaning + keywords)",
    "dense": "Meaning only (dense)",
    "bm25": "Keywords only (BM25)",
}


@dataclass(frozen=True)
class AnswerOptions:
    k: int
    mode: RetrieverMode
    params: DecodingParams


def answer_options(settings: Settings) -> AnswerOptions:
    """Draw the controls (in the current container) and return what they say."""
    modes: list[RetrieverMode] = list(get_args(RetrieverMode))
    k = st.slider(
        "Passages per answer",
        min_value=1,
        max_value=12,
        value=min(settings.k, 12),
        key="opt_k",
        help="How many passages the model reads and you see as sources.",
    )
    mode = st.radio(
        "Search",
        modes,
        index=modes.index(settings.retriever),
        format_func=lambda m: MODE_LABELS[m],
        key="opt_mode",
    )
    max_new = st.slider(
        "Longest answer (tokens)",
        min_value=16,
        max_value=512,
        value=min(max(settings.max_new_tokens, 16), 512),
        step=16,
        key="opt_max_new_tokens",
    )
    sampling = st.toggle(
        "Creative sampling",
        value=settings.do_sample,
        key="opt_sampling",
        help="Off: the most likely words (greedy, repeatable). On: sample with the settings below.",
    )
    temperature, top_k, top_p = settings.temperature, settings.top_k, settings.top_p
    if sampling:
        temperature = st.slider(
            "Temperature", 0.1, 1.5, float(min(max(temperature, 0.1), 1.5)), 0.05, key="opt_t"
        )
        top_k = st.slider("Top-k", 0, 200, int(min(top_k, 200)), 5, key="opt_top_k", help="0 = no limit")
        top_p = st.slider("Top-p", 0.05, 1.0, float(min(max(top_p, 0.05), 1.0)), 0.05, key="opt_top_p")
    params = DecodingParams(
        max_new_tokens=int(max_new),
        do_sample=bool(sampling),
        temperature=float(temperature),
        top_k=int(top_k),
        top_p=float(top_p),
        repetition_penalty=settings.repetition_penalty,
    )
    return AnswerOptions(k=int(k), mode=mode if mode is not None else settings.retriever, params=params)
