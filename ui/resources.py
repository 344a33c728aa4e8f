"""Process-wide resources of the app: models, chains and the job board, built once.

Streamlit re-runs the page script on every interaction and runs one thread per browser
session; ``st.cache_resource`` makes these singletons shared by all of them, so the models
load once per process. The ``make_*`` functions are the only place the UI reaches model
construction; tests replace them with fakes (monkeypatch, since AppTest runs the page in
this same process).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from rag.settings import Settings
from ui.jobs import JobBoard

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


# Old chains are only dropped from the cache, never closed: a session may still be
# streaming an answer from one when another session's commit makes it stale.
@st.cache_resource(show_spinner="Opening the collection…", max_entries=8)
def _chain(_settings: Settings, key: str, index_dir: str, revision: str) -> RagChain:
    # ``revision`` names the live index generation: a commit by any session changes it, so
    # the next run of every session builds a chain over the new index.
    return make_chain(
        _settings,
        Path(index_dir),
        shared_encoder(_settings, key),
        shared_generator(_settings, key),
    )


def shared_chain(settings: Settings, index_dir: Path, revision: str) -> RagChain:
    return _chain(settings, settings_key(settings), str(index_dir), revision)


@st.cache_resource
def job_board() -> JobBoard:
    return JobBoard()


def load_settings() -> Settings:
    """Settings from the environment (RAG_*); read on each run, which is cheap."""
    return Settings()
