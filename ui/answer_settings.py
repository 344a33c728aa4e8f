"""Sidebar controls for how a question is answered, passed to the chain per request.

Nothing here rebuilds a model: retrieval depth, mode and decoding are arguments of
``RagChain.stream``, so changing them is free. The values live under the widget keys in
``st.session_state`` (defaults set there, never passed as ``value=`` too, which Streamlit
would warn about), so a chat can save them and restore them when it is opened again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

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
    decoder: str  # one of Settings.decoder_model and Settings.decoder_choices


OPTION_KEYS = (
    "opt_decoder", "opt_k", "opt_mode", "opt_max_new_tokens", "opt_sampling",
    "opt_t", "opt_top_k", "opt_top_p",
)  # fmt: skip


def saved_options() -> dict[str, Any]:
    """The controls' current values, to save with a chat."""
    return {k: st.session_state[k] for k in OPTION_KEYS if k in st.session_state}


def restore_options(values: dict[str, Any]) -> None:
    """Set the controls to a chat's saved values (before they are drawn)."""
    modes = get_args(RetrieverMode)
    for k, v in values.items():
        if k == "opt_mode" and v not in modes:
            continue  # saved by another version; the widget would reject it
        if k in OPTION_KEYS:
            st.session_state[k] = v


def decoders(settings: Settings) -> list[str]:
    """The decoders a user may pick: the configured one first, then the other choices."""
    return list(dict.fromkeys([settings.decoder_model, *settings.decoder_choices]))


def decoder_label(model: str) -> str:
    return "Default (SmolLM2-135M-Instruct)" if model == "default" else model


def answer_options(settings: Settings) -> AnswerOptions:
    """Draw the controls (in the current container) and return what they say."""
    modes: list[RetrieverMode] = list(get_args(RetrieverMode))
    choices = decoders(settings)
    if st.session_state.get("opt_decoder") not in choices:  # a chat saved with a choice now gone
        st.session_state.pop("opt_decoder", None)
    decoder = settings.decoder_model
    if len(choices) > 1:
        _default("opt_decoder", settings.decoder_model)
        decoder = str(st.selectbox(
            "Language model", choices, format_func=decoder_label, key="opt_decoder",
            help="The decoders configured with RAG_DECODER_MODEL and RAG_DECODER_CHOICES. "
            "Each one is loaded the first time it answers, and stays loaded.",
        ))  # fmt: skip
    _default("opt_k", min(settings.k, 12))
    _default("opt_mode", settings.retriever)
    _default("opt_max_new_tokens", min(max(settings.max_new_tokens, 16), 512))
    _default("opt_sampling", settings.do_sample)
    k = st.slider(
        "Passages per answer",
        min_value=1,
        max_value=12,
        key="opt_k",
        help="How many passages the model reads and you see as sources.",
    )
    mode = st.radio("Search", modes, format_func=lambda m: MODE_LABELS[m], key="opt_mode")
    max_new = st.slider(
        "Longest answer (tokens)",
        min_value=16,
        max_value=512,
        step=16,
        key="opt_max_new_tokens",
        help="Answers that reach this length are cut at their last full sentence.",
    )
    sampling = st.toggle(
        "Creative sampling",
        key="opt_sampling",
        help="Off: the most likely words (greedy, repeatable). On: sample with the settings below.",
    )
    temperature, top_k, top_p = settings.temperature, settings.top_k, settings.top_p
    if sampling:
        _default("opt_t", float(min(max(temperature, 0.1), 1.5)))
        _default("opt_top_k", int(min(top_k, 200)))
        _default("opt_top_p", float(min(max(top_p, 0.05), 1.0)))
        temperature = st.slider("Temperature", 0.1, 1.5, step=0.05, key="opt_t")
        top_k = st.slider("Top-k", 0, 200, step=5, key="opt_top_k", help="0 = no limit")
        top_p = st.slider("Top-p", 0.05, 1.0, step=0.05, key="opt_top_p")
    params = DecodingParams(
        max_new_tokens=int(max_new),
        do_sample=bool(sampling),
        temperature=float(temperature),
        top_k=int(top_k),
        top_p=float(top_p),
        repetition_penalty=settings.repetition_penalty,
    )
    return AnswerOptions(
        k=int(k), mode=mode if mode is not None else settings.retriever, params=params, decoder=decoder
    )


def _default(key: str, value: Any) -> None:
    """Start a control at ``value`` unless it has one (the user's, or a chat's restored).

    Set in session state rather than passed as the widget's value: a widget given both
    makes Streamlit print a warning on the page.
    """
    st.session_state.setdefault(key, value)
