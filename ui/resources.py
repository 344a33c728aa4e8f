"""Process-wide resources of the app: models, chains and the job board, built once.

Streamlit re-runs the page script on every interaction and runs one thread per browser
session; ``st.cache_resource`` makes these singletons shared by all of them, so the models
load once per process. The ``make_*`` functions are the only place the UI reaches model
construction; tests replace them with fakes (monkeypatch, since AppTest runs the page in
this same process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from ingest.jobs import JobBoard
from rag.settings import Settings
from ui.highlight import escape_markdown

if TYPE_CHECKING:
    from streamlit.delta_generator import DeltaGenerator

    from rag.answer.chain import RagChain
    from rag.types import DecodingParams, Encoder, Generator

log = logging.getLogger(__name__)

def make_encoder(settings: Settings) -> Encoder:
    from rag.models.embed import build_encoder

    return build_encoder(settings)


def make_generator(settings: Settings) -> Generator:
    from rag.models.generate import build_generator

    return build_generator(settings)


def make_chain(settings: Settings, index_dir: Path, encoder: Encoder,
               generator: Generator | None) -> RagChain:
    from rag.answer.build import build_chain

    return build_chain(settings, index_dir, encoder=encoder, generator=generator)


def make_reader(settings: Settings) -> None:
    """Load the extractive reader ahead of the first question: build_chain takes it from
    the same process-wide cache (shared_reader), so the chain then opens without the wait."""
    if not settings.reader:
        return
    from rag.models.device import resolve_device
    from rag.models.span_reader import shared_reader

    shared_reader(resolve_device(settings.device))


def decoder_settings(settings: Settings, decoder: str) -> Settings:
    """The settings with ``decoder`` (one of the configured choices) as the decoder."""
    if decoder == settings.decoder_model:
        return settings
    return settings.with_overrides(decoder_model=decoder, decoder_gguf_file=None)


def settings_key(settings: Settings) -> str:
    """Cache key of a settings object (Settings is frozen, so its JSON is its identity)."""
    return settings.model_dump_json()


@dataclass(frozen=True)
class LoadedModel:
    role: str  # "encoder" or "decoder"
    name: str
    device: str
    seconds: float  # how long loading took (once per process)


@st.cache_resource(show_spinner=False)
def loaded_models() -> dict[tuple[str, str], LoadedModel]:
    """(role, settings key) -> what was loaded: shown in the sidebar, and tells the page
    whether a load is still ahead (so it can say so instead of looking frozen)."""
    return {}


def _record(role: str, key: str, model: Encoder | Generator, seconds: float) -> None:
    device = str(getattr(model, "device", "cpu"))
    loaded_models()[(role, key)] = LoadedModel(role, model.name, device, seconds)


# The underscore arguments are not hashed by Streamlit; the key string stands for them.
@st.cache_resource(show_spinner=False)
def shared_encoder(_settings: Settings, key: str) -> Encoder:
    t0 = time.perf_counter()
    encoder = make_encoder(_settings)
    _record("encoder", key, encoder, time.perf_counter() - t0)
    return encoder


@st.cache_resource(show_spinner=False)
def shared_generator(_settings: Settings, key: str) -> Generator:
    t0 = time.perf_counter()
    generator = make_generator(_settings)
    _record("decoder", key, generator, time.perf_counter() - t0)
    return generator


class Warmup:
    """Loads the models in one background thread, started by the first page run of the
    process, so the first question does not wait for them (it waited ~30 s, with nothing
    on the page saying why). What is loading is shown at the top of the page meanwhile.

    A model that fails to load here is only logged: the page loads it again where it is
    needed and shows that error with what the user was doing.
    """

    ROLES = ("encoder", "decoder", "reader")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: set[str] = set()
        self._state: dict[str, str] = {}  # role -> "waiting", "loading", "ready" or "failed"

    def start(self, settings: Settings) -> None:
        """Start loading what ``settings`` use, once per process and settings."""
        key = settings_key(settings)
        with self._lock:
            if key in self._started:
                return
            self._started.add(key)
            roles = ["encoder"]
            if settings.decoder == "local":  # a remote decoder (RAG_DECODER=openai:URL) has nothing to load
                roles.append("decoder")
            if settings.reader:
                roles.append("reader")
            self._state = dict.fromkeys(roles, "waiting")
        threading.Thread(target=self._run, args=(settings, key), name="docchat-warmup", daemon=True).start()

    def _run(self, settings: Settings, key: str) -> None:
        for role in list(self._state):
            self._state[role] = "loading"
            try:
                if role == "encoder":
                    shared_encoder(settings, key)
                elif role == "decoder":
                    shared_generator(settings, key)
                else:
                    make_reader(settings)
            except Exception as e:  # the page loads it again where needed, and says why it failed
                log.warning("loading the %s in the background failed: %s", role, e)
                self._state[role] = "failed"
            else:
                self._state[role] = "ready"

    def status(self) -> str | None:
        """'Loading the models… (encoder ready, decoder loading)' while any is loading, else None."""
        state = dict(self._state)
        if not any(v in ("waiting", "loading") for v in state.values()):
            return None
        parts = ", ".join(f"{role} {'not loaded' if v == 'failed' else v}" for role, v in state.items())
        return f"Loading the models… ({parts})"


@st.cache_resource(show_spinner=False)
def warmup() -> Warmup:
    return Warmup()


@st.fragment(run_every=1.0)
def warmup_status() -> None:
    """What is still loading, polled; once all is loaded, the whole page runs again without it."""
    text = warmup().status()
    if text is None:
        st.rerun()
        return
    st.caption(f":material/hourglass_top: {escape_markdown(text)}")


def load_encoder_visibly(settings: Settings, slot: DeltaGenerator) -> Encoder:
    """The encoder; on a cold start the main area says it is loading (instead of staying blank)."""
    key = settings_key(settings)
    if ("encoder", key) in loaded_models():
        return shared_encoder(settings, key)
    label = warmup().status() or "Loading the models… (encoder loading)"
    with slot.container(), st.spinner(f"Starting docchat: {label}", show_time=True):
        encoder = shared_encoder(settings, key)
    slot.empty()
    return encoder


def load_generator_visibly(settings: Settings) -> float:
    """Wait for the decoder unless it is loaded; seconds waited here (0.0: it was loaded).

    Loading started with the app (Warmup); a question asked before it ended waits in a
    status box that says so, so the answer's own time (in its caption) does not silently
    include it."""
    key = settings_key(settings)
    if settings.decoder != "local":
        return 0.0  # a remote decoder (RAG_DECODER=openai:URL): nothing to load here
    if ("decoder", key) in loaded_models():
        shared_generator(settings, key)
        return 0.0
    label = f"Loading the language model ({configured_name(settings.decoder_model)}), once per start…"
    t0 = time.perf_counter()
    with st.status(label, expanded=False) as status:
        shared_generator(settings, key)
        info = loaded_models()[("decoder", key)]
        status.update(label=f"Language model {info.name} loaded on {info.device} in {info.seconds:.1f} s",
                      state="complete")  # fmt: skip
    return time.perf_counter() - t0


def configured_name(model: str) -> str:
    return "the default model" if model == "default" else model


def render_models(settings: Settings, decoder: str) -> None:
    """Sidebar: which models answer (encoder, decoder, reader) and on which device."""
    decoding = decoder_settings(settings, decoder)
    models = loaded_models()
    with st.expander("Models", icon=":material/memory:"):
        for role, label, configured, key in (
            ("encoder", "Search (encoder)", settings.encoder_model, settings_key(settings)),
            ("decoder", "Answers (decoder)", decoding.decoder_model, settings_key(decoding)),
        ):
            info = models.get((role, key))
            if info is None:
                name = escape_markdown(configured_name(configured))
                # Only the configured models load with the app (Warmup); another decoder
                # chosen in the sidebar loads with its first question.
                when = "loading…" if key == settings_key(settings) else "loads with the first question"
                st.caption(f"{label}: {name}, {when}")
            else:
                name = escape_markdown(info.name)
                st.caption(f"{label}: {name} on {info.device} (loaded in {info.seconds:.1f} s)")
        st.caption(f"Reader: {'extractive span reader, checks every answer' if settings.reader else 'off'}")
        st.caption("Set with RAG_ENCODER_MODEL, RAG_DECODER_MODEL and RAG_DEVICE before starting.")


class BudgetWatch:
    """The decoder, noting whether its last reply used its whole token budget.

    The chain trims such a reply to its last full sentence, so the answer alone does not
    show that it was cut; the page tells the user. Noted per thread: each browser session
    streams in its own script thread, which is also where the chain reads the decoder.
    """

    _last = threading.local()

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.name = inner.name
        self.context_window = inner.context_window

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def stream(self, messages: Sequence[dict[str, str]], params: DecodingParams) -> Iterator[str]:
        BudgetWatch._last.hit = False
        pieces: list[str] = []
        for piece in self.inner.stream(messages, params):
            pieces.append(piece)
            yield piece
        BudgetWatch._last.hit = self.inner.count_tokens("".join(pieces)) >= params.max_new_tokens

    def __getattr__(self, name: str) -> Any:  # device, load_seconds...: the decoder's own
        return getattr(self.inner, name)

    @staticmethod
    def reset() -> None:
        BudgetWatch._last.hit = False

    @staticmethod
    def last_reply_hit_budget() -> bool:
        """Whether the last reply streamed in this thread used the whole budget."""
        return bool(getattr(BudgetWatch._last, "hit", False))


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

    def get(self, settings: Settings, decoding: Settings, index_dir: str, revision: str) -> RagChain:
        """``decoding``: the settings with the chosen decoder (the encoder is ``settings``')."""
        key = settings_key(decoding)
        with self._lock:  # one build at a time: two sessions must not load the index twice
            hit = self._chains.get((key, index_dir))
            if hit is not None and hit[0] == revision:
                return hit[1]
            self._chains.pop((key, index_dir), None)  # release the old one before loading
            encoder = shared_encoder(settings, settings_key(settings))
            # A remote decoder is a chat model the chain builds itself; no local one loads.
            decoder = BudgetWatch(shared_generator(decoding, key)) if decoding.decoder == "local" else None
            chain = make_chain(decoding, Path(index_dir), encoder, decoder)
            self._chains[(key, index_dir)] = (revision, chain)
            return chain


@st.cache_resource(show_spinner=False)
def _live_chains() -> _LiveChains:
    return _LiveChains()


def shared_chain(settings: Settings, index_dir: Path, revision: str, decoder: str | None = None) -> RagChain:
    """The chain over the collection at ``revision`` (the name of its live generation),
    answering with ``decoder`` (one of the configured choices; default the configured one)."""
    decoding = decoder_settings(settings, decoder or settings.decoder_model)
    label = "Opening the collection (its index, and the reader model the first time)…"
    with st.spinner(label, show_time=True):
        return _live_chains().get(settings, decoding, str(index_dir), revision)


@st.cache_resource
def job_board() -> JobBoard:
    return JobBoard()


def load_settings() -> Settings:
    """Settings from the environment (RAG_*); read on each run, which is cheap."""
    return Settings()
