"""The FastAPI application: routes, error shapes, the door, the shared models."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer

from api import chat, errors, library
from api.guard import Guard
from api.origin import allowed_hosts
from api.service import Service
from rag.settings import Settings
from rag.types import Encoder, Generator

log = logging.getLogger(__name__)

DESCRIPTION = """\
Answers from your documents, with sources, over HTTP.

* **OpenAI-compatible**: `POST /v1/chat/completions` (set `stream` for server-sent events)
  and `GET /v1/models`, where each collection is a model. Existing OpenAI clients work
  unchanged; the passages behind an answer come in the extra `docchat` field.
* **Search**: `POST /v1/search` returns passages with source, page and scores.
* **Collections**: create, upload documents (ingested in the background), remove.

When the server has a token (`RAG_API_TOKEN`), every `/v1` request needs the header
`Authorization: Bearer <token>`. Requests from another site's web page are refused (403),
as are Host names the server does not answer to (400; see RAG_API_ALLOWED_HOSTS).
"""


def create_app(settings: Settings, *, encoder: Encoder | None = None,
               generator: Generator | None = None, bind_address: str | None = None) -> FastAPI:
    """The app with its models loaded (the real ones unless given: tests pass fakes).

    ``bind_address`` (``rag serve --address``) is one more Host the server answers to.
    """
    service = Service.build(settings, encoder=encoder, generator=generator)
    app = FastAPI(title="docchat API", version="1", description=DESCRIPTION)
    app.state.service = service
    errors.install(app)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The server edge: the client gets one line, the log the traceback.
        log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
        # An OSError's text carries the server's paths; the log keeps them, the client not.
        text = errors.hide_paths(str(exc).strip(), [(settings.indexes_dir, ""), (Path.home(), "~/")])
        return errors.error_response(
            500, f"unexpected {type(exc).__name__}: {text[:200]}; see the server log"
        )

    app.add_exception_handler(Exception, unexpected)
    # Enforced by the Guard below, before the body is read; declared here too so /docs
    # offers an "Authorize" button for the token.
    bearer = [Depends(HTTPBearer(auto_error=False, description="RAG_API_TOKEN, when the server has one"))]
    app.include_router(chat.router, dependencies=bearer)
    app.include_router(library.router, dependencies=bearer)

    @app.get("/health", tags=["server"], summary="Liveness, and how many requests are inside")
    def health() -> dict[str, object]:
        return {"status": "ok", "requests_inside": service.admission.inside,
                "max_queue": service.admission.limit}

    # A file may be up to RAG_MAX_FILE_MB and an upload carries a bounded number of them;
    # 1 MB on top for the multipart framing. JSON bodies have the Guard's own small limit.
    max_body = int((settings.max_file_mb * library.MAX_FILES_PER_UPLOAD + 1) * 2**20)
    app.add_middleware(Guard, token=settings.api_token, max_body_bytes=max_body,
                       allowed_hosts=allowed_hosts(bind_address, settings.api_allowed_hosts))
    return app
