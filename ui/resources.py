"""Process-wide resources of the app: models, chains and the job board, built once.

Streamlit re-runs the page script on every interaction and runs one thread per browser
session; ``st.cache_resource`` makes these singletons shared by all of them, so the models
load once per process. The ``make_*`` functions are the only place the UI reaches model
construction; tests replace them with fakes (monkeypatch, since AppTest runs the page in
this same process).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from ingest.jobs import JobBoard
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.chain import RagChain
    from rag.types import Encoder, Generator


def make_encoder(settings: Settings) -> Encoder:
    from rag.embed import build_encoder

    return build_encoder(settings)


def make_generator(settings: Settings) -> Generator:
    from rag.generate import build_generator

    return build_generator(settings)


def make_chain(settings: Settings, index_dir: Path, encoder: Encoder, generator: Generator) -> RagChain:
    from rag.chain import build_chain

    return build_chain(settings, index_dir, encoder=encoder, generator=generator)


def settings_key(settings: Settings) -> str:
    """Cache key of a settings object (Settings is frozen, so its JSON is its identity)."""
    return settings.model_dump_json()


# The underscore arguments are not hashed by Streamlit; the key string stands for them.
@st.cache_resource(show_spinner="Loading the embedding model…")
def shared_encoder(_settings: Settings, key: str) -> Encoder:
    return make_encoder(_settings)


@st.cache_resource(show_spinner="Loading the language model…")
def shared_generator(_settings: Settings, key: str) -> Generator:
    return make_generator(_settings)


class _LiveChains:
    """The one chain (and so the one loaded index) per collection and settings.

    A commit changes the collection's revision; the next run of any session then builds a
    chain over the new revision and this drops the old one. It is not closed: a session
    may still be streaming an answer from it; it is freed when that session lets go.
    (A cache keyed by revision kept up to 8 old chains, each with its own index, alive.)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chains: dict[tuple[str, str], tuple[str, RagChain]] = {}

    def get(self, settings: Settings, key: str, index_dir: str, revision: str) -> RagChain:
        with self._lock:  # one build at a time: two sessions must not load the index twice
            hit = self._chains.get((key, index_dir))
            if hit is not None and hit[0] == revision:
                return hit[1]
            self._chains.pop((key, index_dir), None)  # release the old one before loading
            chain = make_chain(settings, Path(index_dir), shared_encoder(settings, key),
                               shared_generator(settings, key))
            self._chains[(key, index_dir)] = (revision, chain)
            return chain


@st.cache_resource(show_spinner=False)
def _live_chains() -> _LiveChains:
    return _LiveChains()


def shared_chain(settings: Settings, index_dir: Path, revision: str) -> RagChain:
    """The chain over the collection at ``revision`` (the name of its live generation)."""
    with st.spinner("Opening the collection…"):
        return _live_chains().get(settings, settings_key(settings), str(index_dir), revision)


@st.cache_resource
def job_board() -> JobBoard:
    return JobBoard()


def load_settings() -> Settings:
    """Settings from the environment (RAG_*); read on each run, which is cheap."""
    return Settings()
