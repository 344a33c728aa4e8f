"""The decoder on another machine: any OpenAI-compatible chat endpoint as the chain's LLM.

``RAG_DECODER=openai:http://gpu-1:8000/v1`` puts vLLM, a llama.cpp server, Ollama or a
hosted endpoint where the local decoder was. The chain talks to LangChain's chat-model
interface either way (``rag.models.chat_model``), so the prompt, the citations, the reader and
the checks on the reply are the same code; only the tokens come over HTTP (streamed).

The remote tokenizer is unknown here: the chain budgets the prompt with its generous
character estimate and ``context_tokens`` (set it to the served model's window).
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel

from rag.settings import Settings

PREFIX = "openai:"


class RemoteDecoderError(RuntimeError):
    """The remote decoder cannot be used as configured (one line for the user)."""


def is_remote(settings: Settings) -> bool:
    return settings.decoder.startswith(PREFIX)


def base_url(settings: Settings) -> str:
    if not is_remote(settings):
        raise ValueError(f"decoder {settings.decoder!r} is not a remote one ('openai:URL')")
    return settings.decoder[len(PREFIX):].rstrip("/")


def _api_key(settings: Settings) -> str:
    # Local servers (vLLM, llama.cpp, Ollama) accept any key; the client insists on one.
    key = settings.decoder_api_key
    return key.get_secret_value() if key is not None else "not-needed"


def served_model(settings: Settings) -> str:
    """The model name to request: the configured one, else the first the server lists."""
    if settings.decoder_remote_model:
        return settings.decoder_remote_model
    url = base_url(settings) + "/models"
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {_api_key(settings)}"}, timeout=10)
        r.raise_for_status()
        models = [m["id"] for m in r.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise RemoteDecoderError(
            f"remote decoder {url}: cannot list its models ({e}); check RAG_DECODER, or set "
            "RAG_DECODER_REMOTE_MODEL to the served model's name"
        ) from e
    if not models:
        raise RemoteDecoderError(f"remote decoder {url} serves no models; set RAG_DECODER_REMOTE_MODEL")
    return str(models[0])


def build_remote_chat_model(settings: Settings) -> BaseChatModel:
    """``ChatOpenAI`` for the configured endpoint, streaming, greedy unless sampling is on.

    Decoding options (max tokens, temperature) are passed per call by the chain
    (``rag.models.chat_model.call_options``), so the sidebar and API choices reach the server.
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as e:  # pragma: no cover - a dependency of the project
        raise RemoteDecoderError(
            "RAG_DECODER=openai:... needs langchain-openai; run scripts/setup.sh"
        ) from e
    kwargs: dict[str, Any] = dict(
        model=served_model(settings),
        base_url=base_url(settings),
        api_key=_api_key(settings),
        timeout=settings.decoder_timeout_s,
        max_retries=1,
        streaming=True,
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature if settings.do_sample else 0.0,
    )
    return ChatOpenAI(**kwargs)
