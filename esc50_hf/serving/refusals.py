"""Requests refused at the door with an HTTP 4xx and one short sentence: calls of endpoints that do not exist,
file paths that were not uploaded to this server, and uploads past the disk cap (`uploads.CapUploads`).

Gradio answers both with HTTP 500 (or an error event) and prints a traceback per request, so anyone could flood the
log; its message for a path also names the path resolved on the server (its working directory). Here an unknown
endpoint gets HTTP 404 and a path outside the upload folder HTTP 400, with the messages below and nothing logged.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home

import json  # noqa: E402
import re  # noqa: E402
from typing import Any  # noqa: E402

import gradio.route_utils  # noqa: E402
import gradio.utils  # noqa: E402
from gradio_client.utils import is_http_url_like  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.types import ASGIApp, Message, Receive, Scope, Send  # noqa: E402

from .uploads import CapUploads, UploadBudget  # noqa: E402

UNKNOWN_ENDPOINT_MESSAGE = "No such endpoint: this server's API has /predict only (see /gradio_api/info)."
NOT_UPLOADED_MESSAGE = (
    "A file path in this request was not uploaded to this server: upload the file first "
    "(POST /gradio_api/upload) and send the path that returns."
)
TOO_LARGE_MESSAGE = "This request's body is too large: send the audio as an upload (POST /gradio_api/upload)."
MAX_CALL_BODY_BYTES = 1 << 20  # a call names its files; it does not carry them
# The routes that run an event on the given data: `/call/<name>` and `/run/<name>` (REST), `/queue/join` (the page,
# gradio_client).
CALL_ROUTE = re.compile(r"/gradio_api/(?:(?:call|run)/[^/]+|queue/join)/?$")


class RefuseForeignPaths:
    """ASGI middleware: a call whose data names a local file outside the upload folder gets HTTP 400 and
    `NOT_UPLOADED_MESSAGE`, before it is queued (URLs pass: `refuse_url_downloads` answers them).

    Args:
        app (`ASGIApp`): The application it wraps (Gradio's).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not CALL_ROUTE.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body, more = b"", True
        while more:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_CALL_BODY_BYTES:
                await JSONResponse({"detail": TOO_LARGE_MESSAGE}, status_code=413)(scope, receive, send)
                return
        try:
            data = json.loads(body or b"null")
        except ValueError:  # Gradio's own validation answers it (HTTP 422)
            data = None
        if any(not _is_uploaded(path) for path in _paths_in(data)):
            await JSONResponse({"detail": NOT_UPLOADED_MESSAGE}, status_code=400)(scope, receive, send)
            return

        async def replay() -> Message:  # the body read above, then whatever comes next (a disconnect)
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _paths_in(data: Any) -> list[str]:
    """The `"path"` of every file object (`{"path": ..., "meta": ...}`) in a request's JSON, URLs aside."""
    if isinstance(data, dict):
        own = [data["path"]] if isinstance(data.get("path"), str) and not is_http_url_like(data["path"]) else []
        return own + [path for value in data.values() for path in _paths_in(value)]
    if isinstance(data, list):
        return [path for value in data for path in _paths_in(value)]
    return []


def _is_uploaded(path: str) -> bool:
    return gradio.utils.is_in_or_equal(gradio.utils.abspath(path), gradio.utils.get_upload_folder())


async def _unknown_endpoint(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"detail": UNKNOWN_ENDPOINT_MESSAGE}, status_code=404)


def _get_fn_or_refuse(blocks, api_name, body):
    """Gradio's `get_fn`, with an unknown `fn_index` refused as an unknown name is (it raises `KeyError`)."""
    try:
        return _GRADIO_GET_FN(blocks, api_name, body)
    except KeyError as error:
        raise gradio.route_utils.FnIndexInferError(str(error)) from None


_GRADIO_GET_FN = gradio.route_utils.get_fn


def refusing_app_kwargs(budget: UploadBudget | None = None) -> dict[str, Any]:
    """What `demo.launch(app_kwargs=...)` takes to refuse, with a short message and no traceback in the log,
    unknown endpoints (HTTP 404), paths that were not uploaded (HTTP 400) and uploads past the disk cap (HTTP 413).
    Makes Gradio's endpoint lookup treat an unknown `fn_index` as an unknown name (idempotent).

    Args:
        budget (`UploadBudget`, *optional*): The uploads' disk cap (`--max-upload-mb`); none: no cap.
    """
    gradio.route_utils.get_fn = _get_fn_or_refuse
    caps = [Middleware(CapUploads, budget=budget)] if budget is not None else []
    return {
        "middleware": [*caps, Middleware(RefuseForeignPaths)],
        "exception_handlers": {gradio.route_utils.FnIndexInferError: _unknown_endpoint},
    }


__all__ = ["NOT_UPLOADED_MESSAGE", "UNKNOWN_ENDPOINT_MESSAGE", "RefuseForeignPaths", "refusing_app_kwargs"]
