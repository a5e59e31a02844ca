"""Who may read the pages: the listener's bearer token, also accepted as a Basic password.

API clients send ``Authorization: Bearer <token>`` as they do for the receivers. A
browser cannot be told to send a bearer header on navigation, so the pages also accept
HTTP Basic with the token as the password (any user name) and answer 401 with a Basic
challenge, which makes the browser ask once and then send it with every request of the
page, its script's ``fetch`` calls included. No token configured: no check (the
listener is then as open for reading as it is for writing).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web


def token_of(header: str) -> str | None:
    """The token in an ``Authorization`` value (Bearer, or Basic's password), or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def authorized(request: web.Request, expected: str) -> bool:
    """Whether ``request`` carries ``expected`` (constant-time compare); True when unset."""
    if not expected:
        return True
    given = token_of(request.headers.get("Authorization", ""))
    # compare_digest: the time taken must not reveal how much of the token matched
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def challenge() -> web.Response:
    return web.json_response(
        {"error": "unauthorized", "detail": "send the listener's bearer token"},
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="detector", charset="UTF-8"'},
    )
