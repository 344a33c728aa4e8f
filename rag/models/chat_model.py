"""The decoder behind LangChain's chat-model interface.

``GeneratorChatModel`` adapts any :class:`rag.types.Generator` (the local transformers
decoder, or the fake one in tests) to ``BaseChatModel``, so the answering chain talks to
one interface and any LangChain chat model (a bigger local model, an OpenAI-compatible
server through ``ChatOpenAI``) can take the decoder's place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from rag.types import DecodingParams, Generator

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the ``{"role", "content"}`` dicts chat templates take."""
    out: list[dict[str, str]] = []
    for m in messages:
        role = _ROLES.get(m.type)
        if role is None:
            raise ValueError(f"message type {m.type!r} is not supported; use system, human or ai")
        out.append({"role": role, "content": m.text})
    return out


class GeneratorChatModel(BaseChatModel):
    """A :class:`rag.types.Generator` as a LangChain chat model (streaming).

    Decoding settings come per call as ``params=DecodingParams(...)`` (the chain passes the
    user's sidebar choices), else from ``params`` on the model.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generator: Any  # a rag.types.Generator (a Protocol, which pydantic cannot validate)
    params: DecodingParams = DecodingParams()

    @property
    def _llm_type(self) -> str:
        return "docchat-local"

    @property
    def context_window(self) -> int:
        return int(self.generator.context_window)

    def count_tokens(self, text: str) -> int:
        return int(self.generator.count_tokens(text))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        params: DecodingParams = kwargs.get("params") or self.params
        gen: Generator = self.generator
        pieces = gen.stream(to_chat_dicts(messages), params)
        try:
            for piece in pieces:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
                if run_manager is not None:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # the caller stopped reading: stop generating too

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(c.text for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def call_options(llm: BaseChatModel, params: DecodingParams) -> dict[str, Any]:
    """Per-call decoding options in the form ``llm`` takes them."""
    if isinstance(llm, GeneratorChatModel):
        return {"params": params}
    # OpenAI-style chat models: max_tokens / temperature / top_p.
    opts: dict[str, Any] = {"max_tokens": params.max_new_tokens}
    if params.do_sample:
        opts.update(temperature=params.temperature, top_p=params.top_p)
    else:
        opts["temperature"] = 0.0
    return opts
