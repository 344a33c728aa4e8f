"""The one place the real models of the chain are built from settings (unless injected)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from langchain_core.language_models import BaseChatModel

from rag.answer.chain import RagChain
from rag.answer.documents import DocumentRoute, DocumentStore
from rag.answer.judgments import YesNoRoute
from rag.answer.reports import ReportRoute
from rag.answer.routes import Route
from rag.answer.steps import decoding_params
from rag.models.chat_model import GeneratorChatModel
from rag.models.span_reader import SpanReader
from rag.settings import Settings
from rag.types import Encoder, Generator


def build_chain(
    settings: Settings,
    index_dir: Path,
    *,
    encoder: Encoder | None = None,
    generator: Generator | None = None,
    llm: BaseChatModel | None = None,
    reader: SpanReader | None = None,
    routes: Sequence[Route] | None = None,
) -> RagChain:
    """The one place the real encoder, reader and decoder are built (unless injected)."""
    # Imported here: these pull in FAISS, bm25s and the model libraries.
    from rag.models.embed import build_encoder
    from rag.retrieval.hybrid import build_retriever
    from rag.store.backends import open_reader

    enc: Encoder = encoder if encoder is not None else build_encoder(settings)
    index = open_reader(settings, Path(index_dir), enc)  # RAG_STORE picks FAISS or Milvus
    if llm is None and settings.decoder != "local":
        from rag.models.remote import build_remote_chat_model  # RAG_DECODER=openai:URL

        llm = build_remote_chat_model(settings)
    if llm is None:
        if generator is None:
            from rag.models.generate import build_generator

            generator = build_generator(settings)
        llm = GeneratorChatModel(generator=generator, params=decoding_params(settings))
    if reader is None and settings.reader:
        from rag.models.device import resolve_device
        from rag.models.span_reader import shared_reader

        reader = shared_reader(resolve_device(settings.device))
    return RagChain(
        build_retriever(settings, index, enc),
        llm,
        abstain_threshold=settings.abstain_threshold,
        reader=reader if settings.reader else None,
        reader_min_margin=settings.reader_min_margin,
        reader_min_support=settings.reader_min_support,
        reader_confident_support=settings.reader_confident_support,
        reader_decoder_weight=settings.reader_decoder_weight,
        reader_overlap_weight=settings.reader_overlap_weight,
        params=decoding_params(settings),
        context_tokens=settings.context_tokens,
        routes=default_routes(settings, index) if routes is None else routes,
    )


def default_routes(settings: Settings, store: DocumentStore) -> list[Route]:
    """The routes the chain tries before the reader, as the settings ask: a summary or a
    list from the whole document, yes/no on a measure's trend or sign, then figures and
    computed measures."""
    routes: list[Route] = []
    if settings.document_answers:
        routes.append(DocumentRoute(store))
    if settings.report_answers:
        report = ReportRoute(store)
        routes += [YesNoRoute(report), report]
    return routes
