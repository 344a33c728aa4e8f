"""A small, real OpenAI-compatible chat server for the remote-decoder tests.

``python tests/decoder_server.py --port 8123 --generator fake|local`` serves
``GET /v1/models`` and ``POST /v1/chat/completions`` (plain JSON or server-sent events)
with uvicorn, the way vLLM or a llama.cpp server would, in front of a docchat Generator:
the deterministic fake one, or the real default decoder (greedy, so its replies can be
compared token for token with the in-process decoder). It records nothing and mocks
nothing: the chain under test reaches it over TCP through ``ChatOpenAI``.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Header, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from rag.types import DecodingParams, Generator


class Message(BaseModel):
    role: str
    content: str


class ChatRequest(BaseModel):
    model: str
    messages: list[Message]
    stream: bool = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None


def create_app(generator: Generator, model: str, key: str | None) -> FastAPI:
    app = FastAPI()

    def check(authorization: str | None) -> None:
        if key is not None and authorization != f"Bearer {key}":
            raise HTTPException(401, "bad API key")

    @app.get("/v1/models")
    def models(authorization: str | None = Header(None)) -> dict[str, Any]:
        check(authorization)
        return {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "test"}]}

    @app.post("/v1/chat/completions", response_model=None)
    def chat(req: ChatRequest, authorization: str | None = Header(None)
             ) -> dict[str, Any] | StreamingResponse:
        check(authorization)
        if req.model != model:
            raise HTTPException(404, f"model {req.model!r} is not served")
        temp = req.temperature or 0.0
        params = DecodingParams(max_new_tokens=req.max_completion_tokens or req.max_tokens or 32,
                                do_sample=temp > 0, temperature=temp or 0.7,
                                top_p=req.top_p or 0.95)
        msgs = [m.model_dump() for m in req.messages]
        cid = "chatcmpl-" + uuid.uuid4().hex
        if not req.stream:
            text = "".join(generator.stream(msgs, params))
            return {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}]}

        def events() -> Iterator[str]:
            def chunk(delta: dict[str, str], finish: str | None) -> str:
                body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return f"data: {json.dumps(body)}\n\n"

            yield chunk({"role": "assistant", "content": ""}, None)
            for piece in generator.stream(msgs, params):
                yield chunk({"content": piece}, None)
            yield chunk({}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--generator", choices=["fake", "local"], default="fake")
    ap.add_argument("--model", default="test-decoder")
    ap.add_argument("--key", default=None)
    args = ap.parse_args()
    gen: Generator
    if args.generator == "fake":
        from rag.testing import FakeGenerator

        gen = FakeGenerator()
    else:
        from rag.models.generate import build_generator
        from rag.settings import Settings

        gen = build_generator(Settings())
    uvicorn.run(create_app(gen, args.model, args.key), host="127.0.0.1", port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
