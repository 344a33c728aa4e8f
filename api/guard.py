"""The door: the Host, a browser's origin, the bearer token, the body type and size,
checked before anything is read (see api.origin for the first two).

A plain ASGI middleware rather than a FastAPI dependency: dependencies run after the body
is parsed (an upload would already be spooled to disk), and a refused request must touch
nothing.
"""

from __future__ import annotations

import json
import secrets

from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.origin import LOCAL_HOSTS, bad_content_type, bad_host, browser_refusal, is_upload

#: Paths anyone may read: the API description, not the documents.
PUBLIC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc", "/health"})


#: A JSON request (a question, a search) is a few KB; only uploads need more.
MAX_JSON_BYTES = 2**20


class _TooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: ASGIApp, *, token: SecretStr | None, max_body_bytes: int,
                 max_json_bytes: int = MAX_JSON_BYTES, allowed_hosts: frozenset[str] = LOCAL_HOSTS) -> None:
        self.app = app
        self.token = token.get_secret_value().encode() if token is not None else None
        self.max_upload_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Host first: a rebinding page must learn nothing, not even whether a token is set.
        problem = bad_host(scope, self.allowed_hosts)
        if problem is not None:
            await _send_error(send, 400, problem)
            return
        problem = browser_refusal(scope)
        if problem is not None:
            await _send_error(send, 403, problem)
            return
        if self.token is not None and scope["path"] not in PUBLIC_PATHS and not self._authorised(scope):
            await _send_error(send, 401, "missing or wrong bearer token: send the header "
                              "'Authorization: Bearer <RAG_API_TOKEN>'",
                              extra_headers=[(b"www-authenticate", b"Bearer")])
            return
        problem = bad_content_type(scope)
        if problem is not None:
            await _send_error(send, 415, problem)
            return
        upload = is_upload(scope)
        limit = self.max_upload_bytes if upload else self.max_json_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_error(send, 413, self._too_large_message(upload))
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge  # a chunked body without Content-Length
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_error(send, 413, self._too_large_message(upload))

    def _authorised(self, scope: Scope) -> bool:
        assert self.token is not None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and secrets.compare_digest(given.strip(), self.token)
        return False

    def _too_large_message(self, upload: bool) -> str:
        if upload:
            return (f"request body is larger than {self.max_upload_bytes / 2**20:.0f} MB; "
                    "send fewer files per request (each at most RAG_MAX_FILE_MB)")
        return (f"JSON body is larger than {self.max_json_bytes / 2**20:g} MB; "
                "send a shorter request (documents go to POST /v1/collections/NAME/documents)")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, status: int, message: str,
                      extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(error_body(status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})
