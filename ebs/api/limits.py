"""A cap on request bodies, enforced before FastAPI reads them.

The write endpoints parse their body before authentication runs, so without
a cap anyone could make the API buffer a huge upload. Bodies (of any method
but GET/HEAD/OPTIONS) over `max_bytes` get 413, by Content-Length when given,
else once the streamed body passes the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
_NO_BODY = {"GET", "HEAD", "OPTIONS"}


class BodyLimit:
    """ASGI middleware: 413 for request bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _NO_BODY:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.strip().isdigit():
            if int(declared) > self.max_bytes:
                await self._too_large(send)
                return
        messages: list[Message] = []
        size = 0
        while True:  # buffer the (small) body, counting as it streams in
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        data = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"}).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(data)).encode())],
        })
        await send({"type": "http.response.body", "body": data})
