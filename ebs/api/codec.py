"""The codec server: the Temporal Web UI and `temporal` CLI decode ebs's payloads here.

ebs.payload_codec compresses payloads over 64 KiB (a large batch's result);
without a codec server the Web UI shows them as `binary/zlib` bytes. This is
Temporal's remote codec protocol: `POST <endpoint>/encode` and
`<endpoint>/decode`, body and answer `Payloads` in protobuf JSON. The endpoint
is `<API URL>/codec`; only the last path part decides the action (a proxy may
add the namespace), and the `X-Namespace` header is ignored: ebs uses one codec
everywhere.

No credentials are needed: the endpoints only convert what the caller sends,
public Fedora build data that anyone with Temporal access reads anyway. The
browser calls them from the Web UI's origin, so the origins listed in
`api.codec_cors_origins` get CORS answers (preflight included).
"""

import logging
import zlib
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from ebs.payload_codec import CODEC

log = logging.getLogger(__name__)

ALLOW_HEADERS = "Content-Type, X-Namespace, Authorization"
ACTIONS = ("encode", "decode")


def register_codec_routes(
    app: FastAPI, origins: Sequence[str], codec: PayloadCodec = CODEC
) -> None:
    """POST and OPTIONS on /codec/.../encode and /codec/.../decode."""
    allowed = frozenset(origins)

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        headers = {"Vary": "Origin"}
        if origin in allowed:
            # Credentials too: a Web UI configured with `includeCredentials`
            # sends its cookies; these endpoints never look at them.
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def error(request: Request, status: int, detail: str) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=cors(request))

    @app.options("/codec/{path:path}", include_in_schema=False)
    async def codec_preflight(path: str, request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin not in allowed:
            return error(request, 403, f"origin {origin!r} may not call the codec server: "
                                       "list it in the config's api.codec_cors_origins")
        headers = cors(request) | {
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": "600",
            "Allow": "POST, OPTIONS",
        }
        return Response(status_code=204, headers=headers)

    @app.post("/codec/{path:path}", tags=["codec"], response_class=Response,
              responses={200: {"content": {"application/json": {}}},
                         400: {"description": "Not Payloads protobuf JSON, or not decodable"},
                         404: {"description": "The path ends in neither encode nor decode"}})
    async def codec_convert(path: str, request: Request) -> Response:
        """Temporal's remote codec protocol for the Web UI and `temporal
        --codec-endpoint <API URL>/codec`: `.../encode` or `.../decode` (the last
        path part decides), a JSON body `{"payloads": [{"metadata": {...}, "data":
        "<base64>"}]}` (protobuf JSON of `temporal.api.common.v1.Payloads`),
        answered in the same form. Payloads ebs did not compress pass through."""
        action = path.rstrip("/").rpartition("/")[2]
        if action not in ACTIONS:
            return error(request, 404, f"unknown codec action {action!r}: encode or decode")
        try:
            # Unknown fields (a newer server's Payload) are dropped, not refused.
            payloads = json_format.Parse(await request.body(), Payloads(),
                                         ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError) as err:
            return error(request, 400, f"expected Payloads protobuf JSON: {err}")
        convert = codec.encode if action == "encode" else codec.decode
        try:
            out = await convert(payloads.payloads)
        except (ValueError, zlib.error) as err:
            return error(request, 400, f"cannot {action} the payloads: {err}")
        body = json_format.MessageToJson(Payloads(payloads=out))
        return Response(body, media_type="application/json", headers=cors(request))
