"""Who may talk to the server: the Host it is addressed by, and whether a browser page sent it.

Two attacks need no token when the server has none (the default on 127.0.0.1):

* **Cross-site requests.** Any web page the user opens can make their browser POST a form
  or a multipart upload to ``http://127.0.0.1:8000`` (a "simple" request: no CORS
  preflight). The browser always labels such a request with ``Origin`` (and, in current
  browsers, ``Sec-Fetch-Site``), while curl, scripts and the OpenAI clients send neither;
  so a state-changing request carrying a foreign label is refused, and JSON endpoints
  accept only a JSON body (a page cannot send one cross-site without a preflight).
* **DNS rebinding.** A page on ``attacker.example`` re-points its name at 127.0.0.1 and is
  then same-origin with the server; only the ``Host`` header gives it away.

Pure functions over ASGI headers, so the Guard applies them before anything is read.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Iterable

from starlette.types import Scope

#: Names a local client uses for this machine, at any port.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The one endpoint whose body is not JSON.
_UPLOAD = re.compile(r"^/v1/collections/[^/]+/documents/?$")
_JSON_TYPE = re.compile(r"^application/([\w.+-]+\+)?json$")


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1")).strip()
    return None


def host_name(host: str) -> str:
    """``[::1]:8000`` -> ``::1``, ``Localhost:8000`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") > 1:  # a bare IPv6 address, no port
        return host
    return host.partition(":")[0].rstrip(".")


def allowed_hosts(bind_address: str | None, extra: Iterable[str]) -> frozenset[str]:
    names = set(LOCAL_HOSTS) | {host_name(h) for h in extra if h.strip()}
    if bind_address:
        unspecified = False
        with contextlib.suppress(ValueError):
            unspecified = ipaddress.ip_address(bind_address).is_unspecified
        # 0.0.0.0 is no name a client can use: the machine's own names go in the setting.
        if not unspecified:
            names.add(host_name(bind_address) if bind_address.startswith("[") else bind_address.lower())
    return frozenset(names)


def bad_host(scope: Scope, allowed: frozenset[str]) -> str | None:
    """Why the request's Host is not one this server answers to, or None."""
    host = header(scope, b"host")
    if host is None:
        return None  # HTTP/1.0 without Host: no browser sends that, so nothing to rebind
    if host_name(host) in allowed:
        return None
    return (f"Host {host!r} is not one this server answers to (a DNS-rebinding guard): "
            f"use one of {', '.join(sorted(allowed))} or add the name to RAG_API_ALLOWED_HOSTS")


def browser_refusal(scope: Scope) -> str | None:
    """Why a state-changing request looks sent by another site's page, or None."""
    if scope.get("method", "GET") not in STATE_CHANGING:
        return None
    site = header(scope, b"sec-fetch-site")
    if site is not None and site.lower() in ("cross-site", "same-site"):
        return (f"Sec-Fetch-Site {site!r}: requests from another site's page are refused; "
                "call the API from a script or client, not from a web page")
    origin = header(scope, b"origin")
    if origin is not None:
        own = f"{scope.get('scheme', 'http')}://{header(scope, b'host') or ''}".lower()
        if origin.lower().rstrip("/") != own:
            return (f"Origin {origin!r} is not this server ({own}): requests from another "
                    "site's page are refused; call the API from a script or client instead")
    return None


def is_upload(scope: Scope) -> bool:
    return scope.get("method") == "POST" and bool(_UPLOAD.match(scope["path"]))


def bad_content_type(scope: Scope) -> str | None:
    """Why a state-changing request's body type is wrong for its endpoint, or None.

    A missing Content-Type is allowed (a bodiless POST, or a script that omits it); a form
    or text body to a JSON endpoint is what a cross-site form would send.
    """
    if scope.get("method", "GET") not in STATE_CHANGING:
        return None
    given = header(scope, b"content-type")
    if given is None:
        return None
    media = given.partition(";")[0].strip().lower()
    if is_upload(scope):
        if media == "multipart/form-data":
            return None
        return (f"Content-Type {media!r}: uploads are multipart/form-data with the field "
                "'files'")
    if _JSON_TYPE.match(media):
        return None
    return (f"Content-Type {media!r}: this endpoint takes a JSON body; send "
            "'Content-Type: application/json'")
